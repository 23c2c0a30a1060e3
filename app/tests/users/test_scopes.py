"""Every management route: 401 without a token, 403 without its scope, through with only it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from app.core.security import ALL_SCOPES
from app.tests.fixtures.api import TokenFor

ID = uuid.uuid4()
USER_BODY = {"email": "new@example.com", "password": "long enough pass", "scopes": []}

# (method, path, scope, JSON body)
ROUTES: list[tuple[str, str, str, Any]] = [
    ("GET", "/api/v1/emails", "emails:read", None),
    ("GET", f"/api/v1/emails/{ID}", "emails:read", None),
    ("GET", f"/api/v1/emails/{ID}/raw", "emails:read", None),
    ("DELETE", f"/api/v1/emails/{ID}", "emails:delete", None),
    ("GET", f"/api/v1/attachments/{ID}", "emails:read", None),
    ("GET", f"/api/v1/attachments/{ID}/content", "emails:read", None),
    ("GET", f"/api/v1/threads/{ID}", "emails:read", None),
    ("GET", "/api/v1/events", "events:read", None),
    ("GET", f"/api/v1/events/{ID}", "events:read", None),
    ("POST", f"/api/v1/events/{ID}/replay", "events:replay", None),
    ("GET", "/api/v1/deliveries?message_id=abc", "events:read", None),
    ("GET", "/api/v1/stats", "events:read", None),
    ("GET", "/api/v1/users", "users:admin", None),
    ("POST", "/api/v1/users", "users:admin", USER_BODY),
    ("PATCH", f"/api/v1/users/{ID}", "users:admin", {"is_active": True}),
    ("GET", "/api/v1/emails/feed", "emails:read", None),
    ("GET", "/api/v1/api-keys", "users:admin", None),
    ("POST", "/api/v1/api-keys", "users:admin", {"name": "k", "scopes": ["users:admin"]}),
    ("DELETE", f"/api/v1/api-keys/{ID}", "users:admin", None),
    ("GET", "/api/v1/destinations", "destinations:admin", None),
    ("POST", "/api/v1/destinations", "destinations:admin", {"url": "https://93.184.215.14/h"}),
    ("GET", f"/api/v1/destinations/{ID}", "destinations:admin", None),
    ("PATCH", f"/api/v1/destinations/{ID}", "destinations:admin", {"description": "x"}),
    ("DELETE", f"/api/v1/destinations/{ID}", "destinations:admin", None),
    ("POST", f"/api/v1/destinations/{ID}/rotate-secret", "destinations:admin", None),
    ("POST", f"/api/v1/destinations/{ID}/test", "destinations:admin", None),
    ("GET", f"/api/v1/destinations/{ID}/notifications", "destinations:admin", None),
    (
        "POST",
        f"/api/v1/destinations/{ID}/recover",
        "destinations:admin",
        {"since": "2026-01-01T00:00:00Z"},
    ),
    ("GET", f"/api/v1/notifications/{ID}", "destinations:admin", None),
    ("POST", f"/api/v1/notifications/{ID}/replay", "destinations:admin", None),
]


def _id(route: tuple[str, str, str, Any]) -> str:
    return f"{route[0]} {route[1].replace(str(ID), '{id}')}"


@pytest.mark.parametrize("route", ROUTES, ids=_id)
async def test_scope_rule(
    route: tuple[str, str, str, Any], client: httpx.AsyncClient, token_for: TokenFor
) -> None:
    method, path, scope, body = route

    async def call(headers: dict[str, str]) -> httpx.Response:
        return await client.request(method, path, headers=headers, json=body)

    anonymous = await call({})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "not_authenticated"

    everything_else = await token_for(*(s for s in ALL_SCOPES if s != scope))
    denied = await call(everything_else)
    assert denied.status_code == 403
    assert denied.json()["error"]["details"] == [{"missing_scopes": [scope]}]

    allowed = await call(await token_for(scope))
    assert allowed.status_code not in (401, 403), allowed.text
    assert allowed.status_code < 500


async def test_who_am_i_needs_only_a_valid_token(
    client: httpx.AsyncClient, token_for: TokenFor
) -> None:
    assert (await client.get("/api/v1/auth/me")).status_code == 401
    response = await client.get("/api/v1/auth/me", headers=await token_for())
    assert response.status_code == 200
    assert response.json()["token_scopes"] == []


async def test_every_management_route_is_in_the_table(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/api/v1/openapi.json")).json()
    secured = {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if operation.get("security")
        and path != "/api/v1/auth/me"
        and not path.startswith(("/api/v1/audience", "/api/v1/mailchimp"))
    }
    listed = {(m, p.split("?")[0].replace(str(ID), "{x}")) for m, p, _, _ in ROUTES}
    normalized = {
        (
            m,
            p.replace("{email_id}", "{x}")
            .replace("{attachment_id}", "{x}")
            .replace("{event_id}", "{x}")
            .replace("{thread_id}", "{x}")
            .replace("{user_id}", "{x}")
            .replace("{destination_id}", "{x}")
            .replace("{notification_id}", "{x}")
            .replace("{key_id}", "{x}"),
        )
        for m, p in secured
    }
    assert normalized == listed
