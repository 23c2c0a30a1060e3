"""The console's sign-in cookie and its CSRF tokens, both HMAC-signed with keys from SECRET_KEY.

A session is `base64(json) . base64(hmac)`: the user id, the user's token version at sign-in,
an expiry and a random session id. No table holds sessions: the cookie is checked on every
request against the user row, so disabling the user or raising their token version (a new
password, a widened scope) ends every session at once, as it ends API tokens.

CSRF tokens are bound to something the attacker cannot read: the session id once signed in,
a random pre-session cookie on the sign-in form. A token is `HMAC(key, purpose + binding)`;
a form posted from elsewhere has neither the cookie's value nor the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

import orjson
from pydantic import SecretStr

SESSION_COOKIE = "kave_console"
LOGIN_COOKIE = "kave_console_login"
COOKIE_PATH = "/console"
MAX_COOKIE_CHARS = 1024


def _derived_key(secret_key: SecretStr, purpose: str) -> bytes:
    # One key per purpose, so a value signed for one use is never valid for another (an API
    # token, a session and a CSRF token all stem from SECRET_KEY).
    return hmac.new(
        secret_key.get_secret_value().encode(), f"kave-console/{purpose}".encode(), hashlib.sha256
    ).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    user_id: uuid.UUID
    token_version: int
    expires_at: float
    session_id: str


def issue_session(
    *, user_id: uuid.UUID, token_version: int, secret_key: SecretStr, minutes: int
) -> tuple[str, ConsoleSession]:
    session = ConsoleSession(
        user_id=user_id,
        token_version=token_version,
        expires_at=time.time() + minutes * 60,
        session_id=secrets.token_urlsafe(16),
    )
    body = orjson.dumps(
        {
            "u": session.user_id.hex,
            "v": session.token_version,
            "e": int(session.expires_at),
            "s": session.session_id,
        }
    )
    signature = hmac.new(_derived_key(secret_key, "session"), body, hashlib.sha256).digest()
    return f"{_b64(body)}.{_b64(signature)}", session


def read_session(cookie: str | None, *, secret_key: SecretStr) -> ConsoleSession | None:
    """The session in the cookie when it is authentic and unexpired; None for anything else."""
    if not cookie or len(cookie) > MAX_COOKIE_CHARS or cookie.count(".") != 1:
        return None
    encoded_body, encoded_signature = cookie.split(".")
    try:
        body, signature = _unb64(encoded_body), _unb64(encoded_signature)
    except (binascii.Error, ValueError):
        return None
    expected = hmac.new(_derived_key(secret_key, "session"), body, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        return None
    try:
        claims = orjson.loads(body)
        session = ConsoleSession(
            user_id=uuid.UUID(hex=str(claims["u"])),
            token_version=int(claims["v"]),
            expires_at=float(claims["e"]),
            session_id=str(claims["s"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    if session.expires_at <= time.time():
        return None
    return session


def new_login_binding() -> str:
    return secrets.token_urlsafe(16)


def csrf_token(*, purpose: str, binding: str, secret_key: SecretStr) -> str:
    digest = hmac.new(
        _derived_key(secret_key, "csrf"), f"{purpose}:{binding}".encode(), hashlib.sha256
    ).digest()
    return _b64(digest)


def csrf_valid(token: str | None, *, purpose: str, binding: str, secret_key: SecretStr) -> bool:
    if not token or not binding:
        return False
    expected = csrf_token(purpose=purpose, binding=binding, secret_key=secret_key)
    return hmac.compare_digest(token.encode(), expected.encode())
