"""`python -m app.cli destinations ...`: add, list and test destinations from a shell.

`add` prints the signing secret once (like the API); it never appears again.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.cli.runtime import run_with_session
from app.core.config import Settings
from app.destinations import service
from app.destinations.repository import DestinationRepository
from app.destinations.schemas import DestinationCreate

destinations_app = typer.Typer(
    help="Destinations that processed mail is sent to.", no_args_is_help=True
)


@destinations_app.command("add")
def add(
    url: Annotated[str, typer.Option(help="Where notifications are POSTed (https in production).")],
    recipients: Annotated[
        str, typer.Option(help="`*`, `support@*`, `*@agents.example.com`, `agent+{tag}@...`")
    ] = "*",
    description: Annotated[str, typer.Option()] = "",
    disabled: Annotated[bool, typer.Option("--disabled", help="Add it switched off.")] = False,
) -> None:
    try:
        body = DestinationCreate(
            url=url, recipients=recipients, description=description, enabled=not disabled
        )
    except ValidationError as exc:
        raise typer.BadParameter("; ".join(str(e["msg"]) for e in exc.errors())) from None

    async def work(session: AsyncSession, settings: Settings) -> None:
        destination = await service.create_destination(session, settings, body)
        typer.echo(f"Added destination {destination.id} for {destination.recipients}")
        typer.echo(f"Signing secret (shown once): {destination.secret}")

    run_with_session(work)


@destinations_app.command("list")
def list_destinations() -> None:
    async def work(session: AsyncSession, settings: Settings) -> None:
        found = await DestinationRepository(session).list_all()
        typer.echo("id                                    enabled  failing  recipients  url")
        for d in found:
            typer.echo(
                f"{d.id}  {'yes' if d.enabled else 'no':<7}  "
                f"{'yes' if d.failing_since else 'no':<7}  {d.recipients}  {d.url}"
            )

    run_with_session(work)


@destinations_app.command("test")
def test(
    destination_id: Annotated[uuid.UUID, typer.Argument(help="The destination's id.")],
) -> None:
    """Send a signed `ping` now and print what the destination answered."""

    async def work(session: AsyncSession, settings: Settings) -> None:
        attempt = await service.send_test(session, settings, destination_id)
        status = attempt.status_code if attempt.status_code is not None else "-"
        typer.echo(
            f"HTTP {status} in {attempt.latency_ms} ms"
            + (f": {attempt.error}" if attempt.error else "")
        )
        if attempt.error:
            raise typer.Exit(1)

    run_with_session(work)
