"""Who is looking at the console and what they may do: session cookie -> active user -> scopes.

The same rules as the API's bearer tokens (`app/users/deps.py`): the user must still be active
and at the token version the session was issued at, and a scope counts while the user holds it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import structlog
from fastapi import Depends, Request

from app.console.errors import CsrfRefused, ScopeRequired, SignInRequired
from app.console.session import SESSION_COOKIE, ConsoleSession, csrf_token, csrf_valid, read_session
from app.core.security import Scope
from app.deps import SessionDep, SettingsDep
from app.users.models import User
from app.users.repository import UserRepository

logger = structlog.get_logger("app.console")

CSRF_FIELD = "csrf"
SESSION_PURPOSE = "session"


@dataclass(frozen=True, slots=True)
class Viewer:
    user: User
    scopes: frozenset[str]
    session: ConsoleSession
    csrf: str  # the token every form of this session carries

    def can(self, scope: str) -> bool:
        return scope in self.scopes


async def get_viewer(request: Request, session: SessionDep, settings: SettingsDep) -> Viewer:
    signed_in = read_session(request.cookies.get(SESSION_COOKIE), secret_key=settings.secret_key)
    if signed_in is None:
        raise SignInRequired()
    user = await UserRepository(session).get(signed_in.user_id)
    if user is None or not user.is_active or user.token_version != signed_in.token_version:
        raise SignInRequired()
    viewer = Viewer(
        user=user,
        scopes=frozenset(user.scopes),
        session=signed_in,
        csrf=csrf_token(
            purpose=SESSION_PURPOSE, binding=signed_in.session_id, secret_key=settings.secret_key
        ),
    )
    request.state.console_viewer = viewer  # for the page templates (navigation, forms)
    return viewer


def needs(*scopes: Scope) -> Callable[..., Awaitable[Viewer]]:
    """A dependency: the viewer, when they hold every one of `scopes` (else a 403 page)."""

    async def check(viewer: Annotated[Viewer, Depends(get_viewer)]) -> Viewer:
        require(viewer, *scopes)
        return viewer

    return check


def require(viewer: Viewer, *scopes: Scope) -> None:
    missing = [scope.value for scope in scopes if not viewer.can(scope)]
    if missing:
        logger.info("console.scope_denied", user_id=str(viewer.user.id), missing=missing)
        raise ScopeRequired(
            "Your account does not hold the permission this needs: " + ", ".join(missing) + "."
        )


async def checked_form(
    request: Request, viewer: Annotated[Viewer, Depends(get_viewer)], settings: SettingsDep
) -> Viewer:
    """For every POST: the form's CSRF token must be this session's."""
    form = await request.form()
    token = form.get(CSRF_FIELD)
    if not csrf_valid(
        token if isinstance(token, str) else None,
        purpose=SESSION_PURPOSE,
        binding=viewer.session.session_id,
        secret_key=settings.secret_key,
    ):
        logger.warning("console.csrf_refused", user_id=str(viewer.user.id), path=request.url.path)
        raise CsrfRefused()
    return viewer


AnyViewer = Annotated[Viewer, Depends(get_viewer)]
FormViewer = Annotated[Viewer, Depends(checked_form)]
EmailsReader = Annotated[Viewer, Depends(needs(Scope.EMAILS_READ))]
EventsReader = Annotated[Viewer, Depends(needs(Scope.EVENTS_READ))]
DestinationsAdmin = Annotated[Viewer, Depends(needs(Scope.DESTINATIONS_ADMIN))]
