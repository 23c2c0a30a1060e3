"""Signing in and out of the console: the same users, password check and throttle as the API's
token endpoint, and a session cookie instead of a bearer token."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import Form, Request
from starlette.responses import RedirectResponse, Response

from app.console.deps import FormViewer
from app.console.errors import CsrfRefused
from app.console.pages import PREFIX, render
from app.console.routing import console_router
from app.console.session import (
    COOKIE_PATH,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    csrf_token,
    csrf_valid,
    issue_session,
    new_login_binding,
)
from app.core.config import Environment, Settings
from app.core.errors import RateLimited
from app.deps import SessionDep, SettingsDep
from app.users.service import authenticate
from app.users.throttle import TokenThrottle

router = console_router()
logger = structlog.get_logger("app.console")

LOGIN_PURPOSE = "login"
LOGIN_COOKIE_SECONDS = 3600


def _secure(settings: Settings) -> bool:
    # Plain http is only expected on a developer's machine.
    return settings.environment is not Environment.DEVELOPMENT


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path only, never another host (open redirect)."""
    if (
        target
        and target.startswith(f"{PREFIX}/")
        and not target.startswith("//")
        and "\\" not in target
        and not any(ord(c) < 32 for c in target)
    ):
        return target
    return f"{PREFIX}/"


def _login_page(
    request: Request,
    settings: Settings,
    *,
    next_path: str,
    email: str = "",
    error: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    binding = new_login_binding()
    response = render(
        request,
        "login.html",
        {
            "csrf": csrf_token(
                purpose=LOGIN_PURPOSE, binding=binding, secret_key=settings.secret_key
            ),
            "next_path": next_path,
            "email": email,
            "error": error,
        },
        status=status,
        headers=headers,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        binding,
        max_age=LOGIN_COOKIE_SECONDS,
        path=f"{COOKIE_PATH}/login",
        httponly=True,
        samesite="strict",
        secure=_secure(settings),
    )
    return response


@router.get("/login")
async def login_form(request: Request, settings: SettingsDep, next: str | None = None) -> Response:
    return _login_page(request, settings, next_path=safe_next(next))


@router.post("/login")
async def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=2048)] = "",
) -> Response:
    binding = request.cookies.get(LOGIN_COOKIE, "")
    if not csrf_valid(csrf, purpose=LOGIN_PURPOSE, binding=binding, secret_key=settings.secret_key):
        logger.warning("console.csrf_refused", path=request.url.path)
        raise CsrfRefused()
    next_path = safe_next(next)
    throttle = TokenThrottle.of(request, username=email, rate=settings.token_rate_limit)
    try:
        if throttle is not None:
            await throttle.admit()
    except RateLimited as exc:
        return _login_page(
            request,
            settings,
            next_path=next_path,
            email=email,
            error=exc.message,
            status=429,
            headers=dict(exc.headers or {}),
        )
    user = await authenticate(session, email=email, password=password)
    if throttle is not None:
        await throttle.record(success=user is not None)
    if user is None:
        return _login_page(
            request,
            settings,
            next_path=next_path,
            email=email,
            error="The email or password is not right, or the account is disabled.",
            status=401,
        )
    cookie, _ = issue_session(
        user_id=user.id,
        token_version=user.token_version,
        secret_key=settings.secret_key,
        minutes=settings.console_session_minutes,
    )
    logger.info("console.signed_in", user_id=str(user.id))
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=settings.console_session_minutes * 60,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(settings),
    )
    response.delete_cookie(LOGIN_COOKIE, path=f"{COOKIE_PATH}/login")
    return response


@router.post("/logout")
async def logout(viewer: FormViewer, settings: SettingsDep) -> Response:
    logger.info("console.signed_out", user_id=str(viewer.user.id))
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(settings),
    )
    return response
