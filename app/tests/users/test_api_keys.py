"""API keys: created once-shown, stored hashed, usable as a bearer, bounded by their creator's
scopes, revoked at once."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.users.models import ApiKey

KEYS = "/api/v1/api-keys"


async def test_key_reads_emails_is_refused_on_admin_routes_and_dies_when_revoked(
    client: httpx.AsyncClient, admin_headers: dict[str, str], session: AsyncSession
) -> None:
    created = await client.post(
        KEYS, json={"name": "agent platform", "scopes": ["emails:read"]}, headers=admin_headers
    )
    assert created.status_code == 201, created.text
    body = created.json()
    key = body["key"]
    assert key.startswith("kave_") and body["scopes"] == ["emails:read"]
    stored = await session.scalar(select(ApiKey).where(ApiKey.id == uuid.UUID(body["id"])))
    assert stored is not None and stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in str(stored.__dict__)
    await session.rollback()  # SQLite: one connection, which the app needs now

    bearer = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/api/v1/emails", headers=bearer)).status_code == 200
    assert (await client.get("/api/v1/emails/feed", headers=bearer)).status_code == 200
    for admin_path in ("/api/v1/users", "/api/v1/destinations", KEYS):
        refused = await client.get(admin_path, headers=bearer)
        assert refused.status_code == 403, admin_path
    me = (await client.get("/api/v1/auth/me", headers=bearer)).json()
    assert me["token_scopes"] == ["emails:read"] and me["token_expires_at"] is None

    listed = (await client.get(KEYS, headers=admin_headers)).json()["items"]
    assert [k["id"] for k in listed] == [body["id"]]
    assert "key" not in listed[0] and listed[0]["prefix"] == key[:12]
    assert listed[0]["last_used_at"] is not None

    revoked = await client.delete(f"{KEYS}/{body['id']}", headers=admin_headers)
    assert revoked.status_code == 204
    after = await client.get("/api/v1/emails", headers=bearer)
    assert after.status_code == 401 and after.json()["error"]["code"] == "not_authenticated"
    twice = await client.delete(f"{KEYS}/{body['id']}", headers=admin_headers)
    assert twice.status_code == 409


async def test_never_more_scopes_than_the_creator(
    client: httpx.AsyncClient, token_for: Any
) -> None:
    admin_only = await token_for("users:admin")
    beyond = await client.post(
        KEYS, json={"name": "x", "scopes": ["emails:read"]}, headers=admin_only
    )
    assert beyond.status_code == 403
    own = await client.post(KEYS, json={"name": "x", "scopes": ["users:admin"]}, headers=admin_only)
    assert own.status_code == 201


async def test_expired_unknown_and_malformed_keys(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    expired = await client.post(
        KEYS,
        json={"name": "old", "scopes": ["emails:read"], "expires_at": "2000-01-01T00:00:00Z"},
        headers=admin_headers,
    )
    assert expired.status_code == 201
    bearer = {"Authorization": f"Bearer {expired.json()['key']}"}
    assert (await client.get("/api/v1/emails", headers=bearer)).status_code == 401
    unknown = {"Authorization": "Bearer kave_not-a-real-key"}
    assert (await client.get("/api/v1/emails", headers=unknown)).status_code == 401
    bad = await client.post(KEYS, json={"name": "x", "scopes": ["nope"]}, headers=admin_headers)
    assert bad.status_code == 422
    empty = await client.post(KEYS, json={"name": "x", "scopes": []}, headers=admin_headers)
    assert empty.status_code == 422
