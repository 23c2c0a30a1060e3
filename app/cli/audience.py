"""`python -m app.cli audience-webhook ...`: Kave's Mailchimp audience webhook, from a shell.

Needs MAILCHIMP_API_KEY and MAILCHIMP_SERVER_PREFIX (and MAILCHIMP_AUDIENCE_WEBHOOK_TOKEN to
register). Output is JSON on stdout with the token in URLs shown as `***`; errors go to stderr
with exit status 1.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Sequence
from typing import Annotated, Any, TypeVar

import typer

from app.cli.runtime import load_cli_settings
from app.core.errors import AppError
from app.mailchimp.client import (
    AUDIENCE_EVENTS,
    WEBHOOK_SOURCES,
    audience_webhook_url,
    create_audience_webhook,
    delete_audience_webhook,
    list_audience_webhooks,
    mailchimp_config,
)
from app.mailchimp.schemas import webhook_list_out, webhook_out

T = TypeVar("T")

audience_app = typer.Typer(
    help="Register, list and delete Kave's audience webhook on a Mailchimp list.",
    no_args_is_help=True,
)

ListIdOption = Annotated[
    str, typer.Option("--list-id", help="The Mailchimp audience (list) id, e.g. a6b5da1054.")
]


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except AppError as exc:
        typer.echo(f"error: {exc.code}: {exc.message}", err=True)
        for detail in exc.details:
            typer.echo(f"  {json.dumps(detail, ensure_ascii=False)}", err=True)
        raise typer.Exit(1) from None


def _choices(values: Sequence[str] | None, *, allowed: Sequence[str], option: str) -> list[str]:
    """Repeated options and comma-separated lists alike: `--events subscribe,profile`."""
    if not values:
        return list(allowed)
    chosen = [part.strip() for value in values for part in value.split(",") if part.strip()]
    unknown = sorted(set(chosen) - set(allowed))
    if unknown or not chosen:
        raise typer.BadParameter(
            f"unknown {', '.join(unknown) or 'empty value'}; choose from {', '.join(allowed)}",
            param_hint=option,
        )
    return chosen


def _print(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


@audience_app.command("register")
def register(
    list_id: ListIdOption,
    url: Annotated[
        str,
        typer.Option(
            "--url",
            help=(
                "Kave's public base URL, e.g. https://kave.example.com "
                "(Kave appends the webhook path and token)."
            ),
        ),
    ],
    events: Annotated[
        list[str] | None,
        typer.Option(
            "--events",
            metavar="NAMES",
            help=f"Comma-separated or repeated, from {', '.join(AUDIENCE_EVENTS)}. Default: all.",
        ),
    ] = None,
    sources: Annotated[
        list[str] | None,
        typer.Option(
            "--sources",
            metavar="NAMES",
            help=f"Comma-separated or repeated, from {', '.join(WEBHOOK_SOURCES)}. Default: all.",
        ),
    ] = None,
) -> None:
    """Create the webhook at Mailchimp; Mailchimp checks the URL with a GET straight away."""
    chosen_events = _choices(events, allowed=AUDIENCE_EVENTS, option="--events")
    chosen_sources = _choices(sources, allowed=WEBHOOK_SOURCES, option="--sources")
    settings = load_cli_settings()

    async def run() -> dict[str, Any]:
        config = mailchimp_config(settings)
        target = audience_webhook_url(url, settings.mailchimp_audience_webhook_token)
        return await create_audience_webhook(
            config, list_id=list_id, url=target, events=chosen_events, sources=chosen_sources
        )

    created = _run(run())
    _print(webhook_out(created, settings.mailchimp_audience_webhook_token).model_dump())


@audience_app.command("list")
def list_(list_id: ListIdOption) -> None:
    """Show the list's webhooks (`points_at_kave` marks the ones carrying Kave's token)."""
    settings = load_cli_settings()

    async def run() -> dict[str, Any]:
        return await list_audience_webhooks(mailchimp_config(settings), list_id=list_id)

    raw = _run(run())
    token = settings.mailchimp_audience_webhook_token
    _print(webhook_list_out(raw, list_id=list_id, token=token).model_dump())


@audience_app.command("delete")
def delete(
    list_id: ListIdOption,
    webhook_id: Annotated[
        str, typer.Option("--webhook-id", help="The webhook's id, as `list` shows it.")
    ],
) -> None:
    """Remove a webhook from the list."""
    settings = load_cli_settings()

    async def run() -> None:
        await delete_audience_webhook(
            mailchimp_config(settings), list_id=list_id, webhook_id=webhook_id
        )

    _run(run())
    typer.echo(f"deleted webhook {webhook_id} from list {list_id}", err=True)
