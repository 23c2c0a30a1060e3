"""`create-user`, `list-users`, `disable-user` and `first-run-hint`.

Passwords are never command-line arguments (they would show in `ps` and shell history): they
come from a hidden prompt with confirmation, or from standard input with `--password-stdin`.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.cli.runtime import load_cli_settings, run_with_session, try_with_session
from app.core.config import Settings
from app.core.errors import AppError
from app.core.security import ALL_SCOPES, Scope
from app.users import service as accounts
from app.users.models import User
from app.users.repository import UserRepository

EmailOption = Annotated[str, typer.Option("--email", help="The user's email (the login name).")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _password_from_stdin() -> str:
    line = sys.stdin.readline()
    password = line[:-1] if line.endswith("\n") else line
    return password.removesuffix("\r")


def _password_from_prompt() -> str:
    if not sys.stdin.isatty():
        raise _fail("standard input is not a terminal; pipe the password with --password-stdin", 2)
    while True:
        password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        try:
            accounts.check_password_strength(password)
        except ValueError as exc:
            typer.echo(f"{exc}; try again.", err=True)
            continue
        return password


def create_user(
    email: EmailOption,
    scope: Annotated[
        list[Scope] | None,
        typer.Option(
            "--scope",
            help="A scope to grant; repeat for several. Without any: all scopes.",
            show_default=False,
        ),
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
    ] = False,
) -> None:
    """Create a user of the management API (asks for the password twice, hidden)."""
    try:
        normalized = accounts.normalize_email(email)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--email") from None
    settings = load_cli_settings()
    password = _password_from_stdin() if password_stdin else _password_from_prompt()
    try:
        accounts.check_password_strength(password)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    scopes = [s.value for s in scope] if scope else list(ALL_SCOPES)

    async def work(session: AsyncSession, _: Settings) -> User:
        return await accounts.create_user(
            session, email=normalized, password=password, scopes=scopes
        )

    user = run_with_session(work, settings)
    if not scope:
        typer.echo("No --scope given: granting all scopes.")
    typer.echo(f"Created user {user.email} (id {user.id}) with scopes: {' '.join(user.scopes)}")


def list_users() -> None:
    """List users: id, email, active flag, scopes and creation time."""

    async def work(session: AsyncSession, _: Settings) -> list[User]:
        return list(await UserRepository(session).list_all())

    users = run_with_session(work)
    if not users:
        typer.echo("No users yet. Create one with: kave create-user --email EMAIL")
        return
    width = max(len("email"), *(len(u.email) for u in users))
    typer.echo(f"{'id':36}  {'email':{width}}  {'active':6}  {'created (UTC)':19}  scopes")
    for u in users:
        created = u.created_at.strftime("%Y-%m-%d %H:%M:%S")
        active = "yes" if u.is_active else "no"
        typer.echo(
            f"{u.id!s:36}  {u.email:{width}}  {active:6}  {created:19}  {' '.join(u.scopes)}"
        )


def disable_user(email: EmailOption) -> None:
    """Disable a user: their tokens stop working at once, and stay dead if re-enabled."""
    normalized = email.strip().lower()

    async def work(session: AsyncSession, _: Settings) -> tuple[User, bool, bool]:
        user = await UserRepository(session).get_by_email(normalized)
        if user is None:
            raise AppError(f"no user with email {normalized}")
        was_active = user.is_active
        if was_active:
            await accounts.update_user(
                session, user_id=user.id, is_active=False, keep_an_admin=False
            )
        return user, was_active, await accounts.active_admin_exists(session)

    user, was_active, admin_left = run_with_session(work)
    if not was_active:
        typer.echo(f"User {user.email} was already disabled.")
        return
    typer.echo(f"Disabled user {user.email} (id {user.id}).")
    if not admin_left:
        typer.echo(
            "Note: no active user has the users:admin scope now; create one with "
            "`kave create-user --email EMAIL`."
        )


FIRST_RUN_HINT = """\
Kave has no management API users yet. Create the first one (all scopes) with

    .venv/bin/kave create-user --email you@example.com

(`python -m app.cli ...` inside the container), then sign in on the API docs page,
/api/v1/docs, with "Authorize", or get a token with POST /api/v1/auth/token."""


def first_run_hint() -> None:
    """Print how to create the first user when there is none; otherwise print nothing."""

    async def work(session: AsyncSession, _: Settings) -> bool:
        return await UserRepository(session).any_exist()

    # No users table yet, or no database: a hint, not a failure.
    if not try_with_session(work):
        typer.echo(FIRST_RUN_HINT)
