"""Tokens issued before a change of password, of the active flag or a new scope are refused.

Each token carries the user's token version (`ver`); such a change raises the version. The
CLI's part (disable-user) is in test_cli.py, disable then enable over the API in
app/tests/security/test_auth_abuse.py.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from jose import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.security import ALL_SCOPES, create_access_token
from app.db.base import JSONType, UTCDateTime, utcnow
from app.tests.fixtures.api import PASSWORD, MakeUser, bearer
from app.users.models import User

TOKEN = "/api/v1/auth/token"
ME = "/api/v1/auth/me"
NEW_PASSWORD = "a brand new password"


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def sign_in(client: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    response = await client.post(TOKEN, data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def version_of(headers: dict[str, str], settings: Settings) -> int:
    token = headers["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, settings.secret_key.get_secret_value(), algorithms=["HS256"])
    version = claims["ver"]
    assert isinstance(version, int)
    return version


async def test_a_new_password_ends_the_tokens_issued_before_it(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    admin = bearer(await make_user(scopes=["users:admin"]), settings)
    target = await make_user(scopes=["emails:read"])
    before = await sign_in(client, target.email, PASSWORD)
    assert (await client.get(ME, headers=before)).status_code == 200

    changed = await client.patch(
        f"/api/v1/users/{target.id}", headers=admin, json={"password": NEW_PASSWORD}
    )
    assert changed.status_code == 200, changed.text
    changed_at = datetime.now(UTC)
    assert_refused(await client.get(ME, headers=before))
    assert_refused(await client.get("/api/v1/emails", headers=before))
    assert (
        await client.post(TOKEN, data={"username": target.email, "password": PASSWORD})
    ).status_code == 401

    after = await sign_in(client, target.email, NEW_PASSWORD)
    assert (await client.get(ME, headers=after)).status_code == 200
    assert version_of(after, settings) == version_of(before, settings) + 1

    # Only the version decides, not the issue time: a token issued in the very second of the
    # change (iat is whole seconds) works with the new version; one with the old version
    # does not, even issued after the change.
    same_second = changed_at.replace(microsecond=0)
    new_version = version_of(after, settings)
    assert (
        await client.get(
            ME, headers=bearer(target, settings, now=same_second, token_version=new_version)
        )
    ).status_code == 200
    later = changed_at + timedelta(seconds=5)
    assert_refused(
        await client.get(
            ME, headers=bearer(target, settings, now=later, token_version=new_version - 1)
        )
    )


async def test_an_administrator_changing_their_own_password_signs_themselves_out(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    admin = await make_user(scopes=ALL_SCOPES)
    headers = await sign_in(client, admin.email, PASSWORD)
    changed = await client.patch(
        f"/api/v1/users/{admin.id}", headers=headers, json={"password": NEW_PASSWORD}
    )
    assert changed.status_code == 200
    assert_refused(await client.get("/api/v1/users", headers=headers))
    renewed = await sign_in(client, admin.email, NEW_PASSWORD)
    assert (await client.get("/api/v1/users", headers=renewed)).status_code == 200


async def test_a_scope_granted_again_does_not_come_back_in_older_tokens(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    admin = bearer(await make_user(scopes=["users:admin"]), settings)
    target = await make_user(scopes=["emails:read", "events:read"])
    path = f"/api/v1/users/{target.id}"
    old = await sign_in(client, target.email, PASSWORD)

    narrowed = await client.patch(path, headers=admin, json={"scopes": ["events:read"]})
    assert narrowed.status_code == 200
    # Taking a scope away leaves the token working for what the user still holds.
    assert (await client.get("/api/v1/emails", headers=old)).status_code == 403
    assert (await client.get("/api/v1/stats", headers=old)).status_code == 200

    regranted = await client.patch(
        path, headers=admin, json={"scopes": ["emails:read", "events:read"]}
    )
    assert regranted.status_code == 200
    assert_refused(await client.get("/api/v1/emails", headers=old))
    assert_refused(await client.get("/api/v1/stats", headers=old))
    new = await sign_in(client, target.email, PASSWORD)
    assert (await client.get("/api/v1/emails", headers=new)).status_code == 200


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"is_active": True},
        {"scopes": ["emails:read", "events:read"]},
        {"scopes": ["events:read", "emails:read", "events:read"]},
    ],
)
async def test_a_change_that_changes_nothing_keeps_the_tokens(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings, change: dict[str, Any]
) -> None:
    admin = bearer(await make_user(scopes=["users:admin"]), settings)
    target = await make_user(scopes=["emails:read", "events:read"])
    headers = await sign_in(client, target.email, PASSWORD)
    response = await client.patch(f"/api/v1/users/{target.id}", headers=admin, json=change)
    assert response.status_code == 200
    assert (await client.get("/api/v1/emails", headers=headers)).status_code == 200


async def test_a_refused_change_revokes_nothing(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    admin = await make_user(scopes=ALL_SCOPES)
    headers = await sign_in(client, admin.email, PASSWORD)
    # The last administrator: disabling is refused with 409 and must not end the token.
    refused = await client.patch(
        f"/api/v1/users/{admin.id}", headers=headers, json={"is_active": False}
    )
    assert refused.status_code == 409
    assert (await client.get(ME, headers=headers)).status_code == 200


def _token_claims(user_id: uuid.UUID, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": str(user_id), "iat": now, "exp": now + 600, "scope": "emails:read"} | extra


async def test_tokens_from_before_token_versions_count_as_version_0(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    admin = bearer(await make_user(scopes=["users:admin"]), settings)
    target = await make_user(scopes=["emails:read"])
    secret = settings.secret_key.get_secret_value()
    legacy = {"Authorization": f"Bearer {jwt.encode(_token_claims(target.id), secret, 'HS256')}"}
    assert (await client.get("/api/v1/emails", headers=legacy)).status_code == 200
    for odd in ("0", True, 0.0, None, [0]):
        token = jwt.encode(_token_claims(target.id, ver=odd), secret, "HS256")
        response = await client.get("/api/v1/emails", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, odd

    changed = await client.patch(
        f"/api/v1/users/{target.id}", headers=admin, json={"password": NEW_PASSWORD}
    )
    assert changed.status_code == 200
    assert_refused(await client.get("/api/v1/emails", headers=legacy))


async def test_a_user_row_without_a_token_version_gets_0(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    # As the migration leaves the users that existed before it: the column's server default.
    users = sa.table(
        "users",
        sa.column("id", sa.Uuid()),
        sa.column("email", sa.String()),
        sa.column("hashed_password", sa.String()),
        sa.column("scopes", JSONType),
        sa.column("is_active", sa.Boolean()),
        sa.column("created_at", UTCDateTime),
    )
    user_id = uuid.uuid4()
    await session.execute(
        sa.insert(users).values(
            id=user_id,
            email="legacy@example.com",
            hashed_password="unused",
            scopes=["emails:read"],
            is_active=True,
            created_at=utcnow(),
        )
    )
    await session.commit()
    version = await session.scalar(sa.select(User.token_version).where(User.id == user_id))
    await session.commit()
    assert version == 0
    issued = create_access_token(
        user_id=user_id,
        scopes=["emails:read"],
        secret_key=settings.secret_key,
        expires_minutes=5,
    )
    headers = {"Authorization": f"Bearer {issued.access_token}"}
    assert (await client.get("/api/v1/emails", headers=headers)).status_code == 200
