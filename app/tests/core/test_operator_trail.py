"""The operator trail: who did what, from which address, in the log (never a secret)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.core.config import Settings
from app.storage.base import BlobStore
from app.tests.emails.factories import add_email, add_event
from app.tests.fixtures.api import PASSWORD, MakeUser, bearer


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"log_level": "INFO", "log_format": "json", "processing_enabled": False}


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    lines = []
    for line in capsys.readouterr().err.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


def one(lines: list[dict[str, Any]], event: str, **match: Any) -> dict[str, Any]:
    found = [
        line
        for line in lines
        if line.get("event") == event and all(line.get(k) == v for k, v in match.items())
    ]
    assert len(found) == 1, (event, match, lines)
    return found[0]


async def test_deletes_replays_and_user_changes_say_who_did_them(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_user: MakeUser,
    settings: Settings,
    session: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    admin = await make_user(
        email="ops@example.com",
        scopes=["emails:read", "emails:delete", "events:replay", "users:admin"],
    )
    other = await make_user(email="reader@example.com", scopes=["emails:read"])
    store: BlobStore = app.state.services.blob_store
    doomed = await add_email(session, store, raw=b"Subject: x\r\n\r\n")
    failed = await add_event(session, status="failed", payload={})
    headers = bearer(admin, settings)
    capsys.readouterr()

    assert (await client.delete(f"/api/v1/emails/{doomed.id}", headers=headers)).status_code == 204
    replay = await client.post(f"/api/v1/events/{failed.id}/replay", headers=headers)
    assert replay.status_code == 202
    patch = await client.patch(
        f"/api/v1/users/{other.id}", json={"is_active": False}, headers=headers
    )
    assert patch.status_code == 200

    lines = log_lines(capsys)
    who = {"actor_user_id": str(admin.id), "actor_email": "ops@example.com"}
    one(lines, "email.deleted", email_id=str(doomed.id), **who)
    one(lines, "event.replay_requested", event_id=str(failed.id), **who)
    one(lines, "user.updated", user_id=str(other.id), is_active=False, **who)
    access = one(lines, "http.request", method="DELETE", **who)
    assert access["client"] == "127.0.0.1"
    assert access["status"] == 204
    raw = json.dumps(lines)
    assert "Bearer" not in raw and headers["Authorization"].split()[1] not in raw


async def test_sign_ins_are_logged_with_the_user_never_the_password(
    client: httpx.AsyncClient, make_user: MakeUser, capsys: pytest.CaptureFixture[str]
) -> None:
    user = await make_user(email="ops@example.com", scopes=["emails:read"])
    capsys.readouterr()
    url = "/api/v1/auth/token"
    ok = await client.post(url, data={"username": "ops@example.com", "password": PASSWORD})
    assert ok.status_code == 200
    wrong = await client.post(url, data={"username": "ops@example.com", "password": "nope" * 4})
    assert wrong.status_code == 401
    typo = "correct-horse-in-the-username-field"
    unknown = await client.post(url, data={"username": typo, "password": PASSWORD})
    assert unknown.status_code == 401

    lines = log_lines(capsys)
    one(lines, "auth.token.issued", user_id=str(user.id), email="ops@example.com")
    one(lines, "auth.token.refused", reason="wrong_password", user_id=str(user.id))
    refused = one(lines, "auth.token.refused", reason="unknown_user")
    assert "email" not in refused and "user_id" not in refused
    raw = json.dumps(lines)
    assert PASSWORD not in raw and typo not in raw and ok.json()["access_token"] not in raw


@pytest.mark.parametrize(
    ("trusted", "expected"), [("127.0.0.1", "203.0.113.7"), ("10.0.0.1", "127.0.0.1")]
)
async def test_the_access_line_has_the_client_uvicorn_trusts(
    app: FastAPI, capsys: pytest.CaptureFixture[str], trusted: str, expected: str
) -> None:
    # uvicorn's own FORWARDED_ALLOW_IPS handling in front of the app, as `uvicorn` runs it.
    proxied = ProxyHeadersMiddleware(app, trusted_hosts=trusted)
    transport = httpx.ASGITransport(app=proxied, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://kave.test") as c:
        capsys.readouterr()
        response = await c.get("/health/live", headers={"X-Forwarded-For": "203.0.113.7"})
    assert response.status_code == 200
    access = one(log_lines(capsys), "http.request", path="/health/live")
    assert access["client"] == expected
