"""`kave stats` and `kave check`: how much is stored, and whether Kave can work.

`check` exits 1 when the settings, the database or the storage fail; Mailchimp being
unreachable is reported but does not fail it (receiving webhooks needs only that Mailchimp can
reach Kave, not the other way round).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.cli.output import JsonOption, print_json
from app.cli.runtime import (
    DatabaseProblem,
    check_database,
    load_cli_settings,
    run_with_session,
    safe_database_url,
)
from app.core.config import Settings, StorageBackend
from app.core.errors import AppError
from app.db.session import build_engine
from app.events.schemas import Stats
from app.events.stats import service_stats
from app.mailchimp.client import mailchimp_config
from app.mailchimp.errors import MailchimpNotConfigured
from app.storage.factory import build_blob_store

CHECK_TIMEOUT_SECONDS = 5.0
# Short: a machine without a route to the internet should hear "unreachable" at once.
MAILCHIMP_TIMEOUT_SECONDS = 3.0
TRANSACTIONAL_URL = "https://mandrillapp.com/api/1.0/"


def stats(as_json: JsonOption = False) -> None:
    """Counts of events by status and kind, emails, attachments, and the backlog's age."""

    async def work(session: AsyncSession, _: Settings) -> Stats:
        return await service_stats(session)

    result = run_with_session(work)
    if as_json:
        print_json(result)
        return
    events = result.events
    typer.echo(f"emails       {result.emails}")
    typer.echo(f"attachments  {result.attachments} ({result.attachment_bytes} bytes)")
    typer.echo(f"events       {sum(events.by_status.values())}")
    for status, count in events.by_status.items():
        typer.echo(f"  {status:11} {count}")
    kinds = ", ".join(f"{kind} {count}" for kind, count in events.by_kind.items() if count)
    typer.echo(f"  by kind:    {kinds or '-'}")
    age = events.oldest_unprocessed_age_seconds
    backlog = f"{events.unprocessed}" + (f", oldest {age:.0f} s old" if age is not None else "")
    typer.echo(f"backlog      {backlog}")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


async def _database(settings: Settings) -> Check:
    url = safe_database_url(settings.database_url)
    try:
        engine = build_engine(settings)
    except Exception as exc:  # noqa: BLE001 (a URL SQLAlchemy cannot use)
        return Check("database", False, f"DATABASE_URL is unusable ({type(exc).__name__})")
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS + 10):
            revision = await check_database(engine, settings.database_url)
        return Check("database", True, f"{url} at revision {revision}")
    except DatabaseProblem as exc:
        return Check("database", False, str(exc))
    except TimeoutError:
        return Check("database", False, f"cannot reach the database at {url} (timed out)")
    finally:
        await engine.dispose()


def _storage_place(settings: Settings) -> str:
    if settings.storage_backend is StorageBackend.S3:
        return f"s3 bucket {settings.s3_bucket} at {settings.s3_endpoint_url or 'AWS'}"
    return f"local directory {settings.storage_local_path}"


async def _storage(settings: Settings) -> Check:
    place = _storage_place(settings)
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            store = await build_blob_store(settings)
            try:
                await store.check()
            finally:
                await store.close()
    except TimeoutError:
        return Check("storage", False, f"{place}: timed out")
    except AppError as exc:
        return Check("storage", False, f"{place}: {exc.message}")
    return Check("storage", True, place)


async def _reach(url: str, *, auth: aiohttp.BasicAuth | None = None) -> int:
    timeout = aiohttp.ClientTimeout(total=MAILCHIMP_TIMEOUT_SECONDS)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        http.get(url, auth=auth, allow_redirects=False) as response,
    ):
        return response.status


async def _mailchimp(settings: Settings) -> Check:
    """The Marketing API's ping with the configured key, else whether Mandrill answers at all."""
    try:
        config = mailchimp_config(settings)
    except MailchimpNotConfigured:
        config = None
    url = f"{config.api_root}/ping" if config else TRANSACTIONAL_URL
    auth = aiohttp.BasicAuth("kave", config.api_key.get_secret_value()) if config else None
    try:
        status = await _reach(url, auth=auth)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return Check("mailchimp", False, f"{url} unreachable ({type(exc).__name__})")
    if config is None:
        return Check("mailchimp", True, f"{url} answers (HTTP {status})")
    if status == 200:
        return Check("mailchimp", True, f"{url}: the API key works")
    return Check("mailchimp", False, f"{url} answered HTTP {status} (is MAILCHIMP_API_KEY right?)")


def check() -> None:
    """Check the settings, the database, the storage and whether Mailchimp can be reached."""
    try:
        settings = load_cli_settings()
    except SystemExit as exc:  # load_settings' readable refusal
        typer.echo("settings   invalid")
        typer.echo(str(exc.code), err=True)
        raise typer.Exit(1) from None

    async def run() -> list[Check]:
        return list(
            await asyncio.gather(_database(settings), _storage(settings), _mailchimp(settings))
        )

    keys = len(settings.mailchimp_webhook_secret)
    checks = [
        Check(
            "settings",
            True,
            f"environment {settings.environment.value}, {keys} webhook key(s), "
            f"EMAIL_RETENTION_DAYS={settings.email_retention_days or 'keep'}",
        ),
        *asyncio.run(run()),
    ]
    for item in checks:
        # Mailchimp unreachable is a warning: Kave still receives what Mailchimp sends it.
        word = "ok" if item.ok else "warn" if item.name == "mailchimp" else "FAILED"
        typer.echo(f"{item.name:9}  {word:6}  {item.detail}")
    if any(not item.ok for item in checks if item.name != "mailchimp"):
        raise typer.Exit(1)
