"""Tokens: issuing them, refusing bad credentials alike, rate limiting, and every token defect."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jose import jwt
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import security
from app.core.config import Settings
from app.core.security import ALL_SCOPES, create_access_token
from app.tests.fixtures.api import PASSWORD, MakeUser, bearer
from app.users.repository import UserRepository

TOKEN = "/api/v1/auth/token"
PROTECTED = "/api/v1/emails"


async def get_token(
    client: httpx.AsyncClient, username: str, password: str, **form: str
) -> httpx.Response:
    return await client.post(TOKEN, data={"username": username, "password": password, **form})


def claims_of(token: str, settings: Settings) -> dict[str, Any]:
    return jwt.decode(token, settings.secret_key.get_secret_value(), algorithms=["HS256"])


async def test_token_for_good_credentials(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    user = await make_user(email="ops@example.com", scopes=["emails:read", "events:read"])
    response = await get_token(client, "OPS@example.com ", PASSWORD)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_expire_minutes * 60
    assert body["scope"] == "emails:read events:read"
    claims = claims_of(body["access_token"], settings)
    assert claims["sub"] == str(user.id)
    assert claims["scope"] == "emails:read events:read"
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    assert abs(claims["iat"] - time.time()) < 60
    assert len(claims["jti"]) == 32
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["email"] == "ops@example.com"
    assert me.json()["token_scopes"] == ["emails:read", "events:read"]


async def test_token_can_ask_for_fewer_scopes(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    await make_user(email="reader@example.com", scopes=["emails:read", "events:read"])
    response = await get_token(
        client, "reader@example.com", PASSWORD, scope="emails:read users:admin"
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "emails:read"
    assert claims_of(response.json()["access_token"], settings)["scope"] == "emails:read"


async def test_wrong_password_unknown_user_and_disabled_user_look_the_same(
    client: httpx.AsyncClient, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_user(email="active@example.com")
    await make_user(email="disabled@example.com", is_active=False)
    verified: list[str] = []
    real_verify = security._passwords.verify

    def counting_verify(secret: str, hashed: str) -> bool:
        verified.append(hashed)
        return bool(real_verify(secret, hashed))

    monkeypatch.setattr(security._passwords, "verify", counting_verify)
    attempts = [
        ("active@example.com", "wrong password!!"),
        ("nobody@example.com", PASSWORD),
        ("disabled@example.com", PASSWORD),
        ("not an email", PASSWORD),
        ("nul\x00@example.com", PASSWORD),
    ]
    bodies = []
    for username, password in attempts:
        response = await get_token(client, username, password)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        error = response.json()["error"]
        bodies.append((error["code"], error["message"]))
    assert set(bodies) == {("invalid_credentials", "Incorrect username or password.")}
    # One argon2 verification per attempt, known user or not: no timing difference to exploit.
    assert len(verified) == len(attempts)
    assert all(h.startswith("$argon2id$") for h in verified)


async def test_oversized_password_is_a_plain_refusal(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    await make_user(email="ops@example.com")
    for username in ("ops@example.com", "nobody@example.com"):
        response = await get_token(client, username, "x" * 5000)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_credentials"


async def test_missing_form_fields_are_422(client: httpx.AsyncClient) -> None:
    response = await client.post(TOKEN, data={"username": "x@example.com"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_sixth_token_request_is_rate_limited(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    await make_user(email="ops@example.com")
    for _ in range(5):
        assert (await get_token(client, "ops@example.com", "wrong password!!")).status_code == 401
    response = await get_token(client, "ops@example.com", PASSWORD)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response.headers["Retry-After"]) <= 60


async def test_rate_limit_is_per_address_and_guards_the_username(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    for _ in range(5):
        await get_token(client, "target@example.com", "guess guess guess")
    # Same username from another address: the username is guarded, so only this address's
    # first attempt at it is checked.
    other = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("198.51.100.7", 4000)),
        base_url="http://kave.test",
    )
    async with other:
        assert (await get_token(other, "target@example.com", "x" * 12)).status_code == 401
        assert (await get_token(other, "target@example.com", "x" * 12)).status_code == 429
        assert (await get_token(other, "someone@example.com", "x" * 12)).status_code == 401
    # Same address, another username: the address's budget is spent.
    assert (await get_token(client, "someone@example.com", "x" * 12)).status_code == 429


@pytest.mark.parametrize("settings_overrides", [{"token_rate_limit": "2/minute"}])
async def test_rate_limit_follows_the_setting(client: httpx.AsyncClient) -> None:
    codes = [(await get_token(client, "a@example.com", "x" * 12)).status_code for _ in range(3)]
    assert codes == [401, 401, 429]


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _defective_tokens(user_id: uuid.UUID, settings: Settings) -> dict[str, str | None]:
    key = settings.secret_key
    now = datetime.now(UTC)
    good_claims = {"sub": str(user_id), "exp": int(time.time()) + 600, "scope": "emails:read"}
    expired = create_access_token(
        user_id=user_id,
        scopes=ALL_SCOPES,
        secret_key=key,
        expires_minutes=60,
        now=now - timedelta(hours=2),
    ).access_token
    wrong_key = create_access_token(
        user_id=user_id,
        scopes=ALL_SCOPES,
        secret_key=SecretStr("another-secret-key-that-is-long-enough"),
        expires_minutes=60,
    ).access_token
    return {
        "missing": None,
        "empty": "",
        "malformed": "not-a-jwt",
        "three_garbage_parts": "a.b.c",
        "expired": expired,
        "wrongly_signed": wrong_key,
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(good_claims)}.",
        "alg_hs512": jwt.encode(good_claims, key.get_secret_value(), algorithm="HS512"),
        "no_exp": jwt.encode(
            {"sub": str(user_id), "scope": "emails:read"}, key.get_secret_value(), algorithm="HS256"
        ),
        "no_sub": jwt.encode(
            {"exp": int(time.time()) + 600, "scope": "emails:read"},
            key.get_secret_value(),
            algorithm="HS256",
        ),
        "sub_not_uuid": jwt.encode(
            good_claims | {"sub": "admin"}, key.get_secret_value(), algorithm="HS256"
        ),
        "unknown_user": create_access_token(
            user_id=uuid.uuid4(), scopes=ALL_SCOPES, secret_key=key, expires_minutes=60
        ).access_token,
    }


DEFECTS = list(_defective_tokens(uuid.uuid4(), Settings(_env_file=None)).keys())


@pytest.mark.parametrize("defect", DEFECTS)
async def test_token_defects_are_401(
    defect: str, client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    user = await make_user()
    token = _defective_tokens(user.id, settings)[defect]
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    response = await client.get(PROTECTED, headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_other_authorization_schemes_are_401(client: httpx.AsyncClient) -> None:
    response = await client.get(PROTECTED, headers={"Authorization": "Basic b3BzOnNlY3JldA=="})
    assert response.status_code == 401


async def test_disabled_users_valid_token_is_401(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings, session: AsyncSession
) -> None:
    user = await make_user()
    headers = bearer(user, settings)
    assert (await client.get(PROTECTED, headers=headers)).status_code == 200
    user.is_active = False
    await session.commit()
    response = await client.get(PROTECTED, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


async def test_deleted_users_valid_token_is_401(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings, session: AsyncSession
) -> None:
    user = await make_user()
    headers = bearer(user, settings)
    await UserRepository(session).delete_by_id(user.id)
    await session.commit()
    assert (await client.get(PROTECTED, headers=headers)).status_code == 401


async def test_missing_scope_is_403_with_details(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    user = await make_user(scopes=["events:read"])
    response = await client.get(PROTECTED, headers=bearer(user, settings))
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "permission_denied"
    assert error["details"] == [{"missing_scopes": ["emails:read"]}]
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


async def test_scope_taken_from_user_stops_working_at_once(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings, session: AsyncSession
) -> None:
    user = await make_user(scopes=["emails:read", "events:read"])
    headers = bearer(user, settings)
    assert (await client.get(PROTECTED, headers=headers)).status_code == 200
    user.scopes = ["events:read"]
    await session.commit()
    assert (await client.get(PROTECTED, headers=headers)).status_code == 403


async def test_token_scope_limits_a_more_powerful_user(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    user = await make_user(scopes=ALL_SCOPES)
    headers = bearer(user, settings, scopes=["events:read"])
    assert (await client.get(PROTECTED, headers=headers)).status_code == 403
    assert (await client.get("/api/v1/stats", headers=headers)).status_code == 200
