"""`python -m app.cli api-keys ...`: create and revoke API keys from a shell.

A key belongs to a user (`--email`) and holds at most that user's scopes; `create` prints the
key once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.cli.runtime import run_with_session
from app.core.config import Settings
from app.core.errors import NotFound
from app.core.security import Scope
from app.core.times import as_utc
from app.users.api_keys import create_api_key, revoke_api_key
from app.users.repository import UserRepository
from app.users.service import normalize_email

api_keys_app = typer.Typer(help="API keys for machines (Bearer kave_...).", no_args_is_help=True)


@api_keys_app.command("create")
def create(
    email: Annotated[str, typer.Option(help="The user the key acts for.")],
    name: Annotated[str, typer.Option(help="What the key is for.")],
    scope: Annotated[list[Scope], typer.Option(help="A scope; repeat. At most the user's.")],
    expires_at: Annotated[
        datetime | None, typer.Option(help="ISO 8601; no zone means UTC. Default: never.")
    ] = None,
) -> None:
    try:
        address = normalize_email(email)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--email") from None

    async def work(session: AsyncSession, settings: Settings) -> None:
        user = await UserRepository(session).get_by_email(address)
        if user is None or not user.is_active:
            raise NotFound(f"No active user {email}.")
        row, key = await create_api_key(
            session,
            creator=user,
            creator_scopes=frozenset(user.scopes),
            name=name,
            scopes=[s.value for s in scope],
            expires_at=as_utc(expires_at) if expires_at else None,
        )
        typer.echo(f"Created API key {row.id} ({' '.join(row.scopes)}) for {user.email}")
        typer.echo(f"Key (shown once): {key}")

    run_with_session(work)


@api_keys_app.command("revoke")
def revoke(key_id: Annotated[uuid.UUID, typer.Argument(help="The key's id.")]) -> None:
    async def work(session: AsyncSession, settings: Settings) -> None:
        await revoke_api_key(session, key_id)
        typer.echo(f"Revoked API key {key_id}; it stops working at once.")

    run_with_session(work)
