"""User administration over the API (users:admin)."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.security import ALL_SCOPES, verify_password
from app.tests.fixtures.api import MakeUser, TokenFor, bearer
from app.users.models import User

USERS = "/api/v1/users"


async def test_list_users(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    admin = await make_user(email="admin@example.com", scopes=["users:admin"])
    await make_user(email="reader@example.com", scopes=["emails:read"], is_active=False)
    response = await client.get(USERS, headers=bearer(admin, settings))
    assert response.status_code == 200
    items = response.json()["items"]
    assert [u["email"] for u in items] == ["admin@example.com", "reader@example.com"]
    assert items[1]["is_active"] is False
    assert items[1]["scopes"] == ["emails:read"]
    assert "hashed_password" not in items[0]


async def test_create_user_then_sign_in(
    client: httpx.AsyncClient, token_for: TokenFor, session: AsyncSession
) -> None:
    admin = await token_for("users:admin")
    body = {
        "email": "  New.Person@Example.COM ",
        "password": "a long enough password",
        "scopes": ["events:read", "emails:read", "events:read"],
    }
    response = await client.post(USERS, headers=admin, json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["email"] == "new.person@example.com"
    assert created["scopes"] == ["emails:read", "events:read"]
    assert created["is_active"] is True
    assert response.headers["location"] == f"/api/v1/users/{created['id']}"
    assert "password" not in response.text
    row = await session.get(User, uuid.UUID(created["id"]))
    assert row is not None
    assert row.hashed_password.startswith("$argon2id$")
    assert verify_password("a long enough password", row.hashed_password)
    await session.commit()

    token = await client.post(
        "/api/v1/auth/token",
        data={"username": "NEW.person@example.com", "password": "a long enough password"},
    )
    assert token.status_code == 200
    assert token.json()["scope"] == "emails:read events:read"

    duplicate = await client.post(
        USERS, headers=admin, json=body | {"email": "new.PERSON@example.com"}
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "user_exists"


async def test_create_user_validation(client: httpx.AsyncClient, token_for: TokenFor) -> None:
    admin = await token_for("users:admin")
    good = {"email": "x@example.com", "password": "twelve chars", "scopes": []}
    assert (await client.post(USERS, headers=admin, json=good)).status_code == 201
    for bad in (
        good | {"email": "y@example.com", "password": "eleven char"},
        good | {"email": "not-an-address"},
        good | {"email": "y@example.com", "scopes": ["emails:write"]},
        {"email": "y@example.com", "password": "twelve chars"},
    ):
        response = await client.post(USERS, headers=admin, json=bad)
        assert response.status_code == 422, bad
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        # Validation errors never echo the input (the password, here).
        assert "eleven char" not in response.text


async def test_patch_user(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings, session: AsyncSession
) -> None:
    admin = bearer(await make_user(scopes=["users:admin"]), settings)
    target = await make_user(email="t@example.com", scopes=["emails:read"])
    target_headers = bearer(target, settings)
    path = f"{USERS}/{target.id}"

    response = await client.patch(path, headers=admin, json={"scopes": ["events:read"]})
    assert response.status_code == 200
    assert response.json()["scopes"] == ["events:read"]

    response = await client.patch(path, headers=admin, json={"password": "a brand new password"})
    assert response.status_code == 200
    sign_in = await client.post(
        "/api/v1/auth/token",
        data={"username": "t@example.com", "password": "a brand new password"},
    )
    assert sign_in.status_code == 200

    # The new scope and the new password each ended the tokens issued before them.
    refused = await client.get("/api/v1/stats", headers=target_headers)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "not_authenticated"
    response = await client.patch(path, headers=admin, json={"is_active": False})
    assert response.json()["is_active"] is False
    assert (await client.get("/api/v1/auth/me", headers=target_headers)).status_code == 401

    assert (await client.patch(path, headers=admin, json={"password": "short"})).status_code == 422
    assert (await client.patch(path, headers=admin, json={"active": False})).status_code == 422
    unknown = await client.patch(f"{USERS}/{uuid.uuid4()}", headers=admin, json={})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "user_not_found"


async def test_last_administrator_cannot_be_removed(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    admin = await make_user(scopes=ALL_SCOPES)
    headers = bearer(admin, settings)
    path = f"{USERS}/{admin.id}"
    for change in ({"is_active": False}, {"scopes": ["emails:read"]}):
        response = await client.patch(path, headers=headers, json=change)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "last_administrator"
    still = await client.get("/api/v1/auth/me", headers=headers)
    assert still.status_code == 200
    assert "users:admin" in still.json()["scopes"]

    # With a second administrator, the first may step down.
    await make_user(scopes=["users:admin"])
    response = await client.patch(path, headers=headers, json={"scopes": ["emails:read"]})
    assert response.status_code == 200
