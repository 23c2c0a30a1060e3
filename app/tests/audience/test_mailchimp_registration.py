"""Registering the audience webhook through the real `mailchimp-marketing` client.

The client talks HTTP to a local double of the Marketing API (these machines have no internet),
so each test can show exactly what the client sent: method, path, basic auth, JSON body.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from app.cli import audience as audience_cli
from app.cli.audience import audience_app
from app.core.config import Settings
from app.mailchimp.client import (
    audience_webhook_url,
    mailchimp_config,
    mask_webhook_url,
    points_at_kave,
)
from app.mailchimp.errors import InvalidPublicUrl, MailchimpNotConfigured
from app.tests.audience.mailchimp_double import MailchimpDouble, MailchimpServer
from app.tests.audience.support import TOKEN, bearer

API_KEY = "0123456789abcdef0123456789abcdef-us19"
LIST_ID = "a6b5da1054"
HOOKS_PATH = "/api/v1/mailchimp/audience-webhooks"
TOKEN_URL = f"https://kave.example.com/api/v1/webhooks/mailchimp/audience/{TOKEN}"
ALL_EVENTS = {
    "subscribe": True,
    "unsubscribe": True,
    "profile": True,
    "cleaned": True,
    "upemail": True,
    "campaign": True,
}


@pytest.fixture
def mailchimp() -> Iterator[MailchimpDouble]:
    with MailchimpServer(MailchimpDouble(api_key=API_KEY, lists={LIST_ID})) as double:
        yield double


def with_mailchimp(settings: Settings, double: MailchimpDouble | None, **changes: Any) -> Settings:
    # MAILCHIMP_API_BASE_URL is read with getattr until Settings declares it; model_copy sets it
    # either way.
    update: dict[str, Any] = {
        "mailchimp_api_key": SecretStr(API_KEY),
        "mailchimp_server_prefix": "us19",
        "mailchimp_api_base_url": double.base_url if double else None,
    }
    return settings.model_copy(update=update | changes)


@pytest.fixture
def settings(settings: Settings, mailchimp: MailchimpDouble) -> Settings:
    return with_mailchimp(settings, mailchimp)


@pytest.fixture
async def admin(session: AsyncSession, settings: Settings) -> dict[str, str]:
    return await bearer(session, settings, "users:admin")


def basic(key: str) -> tuple[str, str]:
    return ("user", key)


# --- the management API ---------------------------------------------------------------------


async def test_register_sends_exactly_this_request(
    client: httpx.AsyncClient, mailchimp: MailchimpDouble, admin: dict[str, str]
) -> None:
    response = await client.post(
        HOOKS_PATH,
        json={
            "list_id": LIST_ID,
            "url": "https://kave.example.com/",
            "events": ["subscribe", "unsubscribe", "upemail"],
            "sources": ["user", "admin"],
        },
        headers=admin,
    )
    assert response.status_code == 201, response.text

    [sent] = mailchimp.requests
    assert sent.method == "POST"
    assert sent.path == f"/3.0/lists/{LIST_ID}/webhooks"
    assert sent.basic_auth == basic(API_KEY)
    assert sent.headers["content-type"] == "application/json"
    assert sent.json == {
        "url": TOKEN_URL,
        "events": {
            "subscribe": True,
            "unsubscribe": True,
            "profile": False,
            "cleaned": False,
            "upemail": True,
            "campaign": False,
        },
        "sources": {"user": True, "admin": True, "api": False},
    }

    body = response.json()
    webhook_id = mailchimp.webhooks[LIST_ID][0]["id"]
    assert body == {
        "id": webhook_id,
        "list_id": LIST_ID,
        "url": "https://kave.example.com/api/v1/webhooks/mailchimp/audience/***",
        "events": sent.json["events"],
        "sources": sent.json["sources"],
        "points_at_kave": True,
    }
    assert TOKEN not in response.text


async def test_register_defaults_to_every_event_and_source(
    client: httpx.AsyncClient, mailchimp: MailchimpDouble, admin: dict[str, str]
) -> None:
    response = await client.post(
        HOOKS_PATH, json={"list_id": LIST_ID, "url": "https://kave.example.com"}, headers=admin
    )
    assert response.status_code == 201
    assert mailchimp.requests[0].json == {
        "url": TOKEN_URL,
        "events": ALL_EVENTS,
        "sources": {"user": True, "admin": True, "api": True},
    }


async def test_list_then_delete(
    client: httpx.AsyncClient, mailchimp: MailchimpDouble, admin: dict[str, str]
) -> None:
    mailchimp.webhooks[LIST_ID] = [
        {
            "id": "other00001",
            "url": "https://elsewhere.example.org/hook?secret=abc",
            "events": ALL_EVENTS,
            "sources": {"user": True, "admin": False, "api": False},
            "list_id": LIST_ID,
            "_links": [],
        },
        {
            "id": "stale00001",
            "url": "https://kave.example.com/api/v1/webhooks/mailchimp/audience/old-token",
            "events": ALL_EVENTS,
            "sources": {"user": True, "admin": True, "api": True},
            "list_id": LIST_ID,
            "_links": [],
        },
    ]
    listed = await client.get(HOOKS_PATH, params={"list_id": LIST_ID}, headers=admin)
    assert listed.status_code == 200
    assert mailchimp.requests[-1].method == "GET"
    assert mailchimp.requests[-1].path == f"/3.0/lists/{LIST_ID}/webhooks"
    assert mailchimp.requests[-1].basic_auth == basic(API_KEY)
    body = listed.json()
    assert (body["list_id"], body["total_items"]) == (LIST_ID, 2)
    assert [(h["id"], h["points_at_kave"]) for h in body["webhooks"]] == [
        ("other00001", False),
        ("stale00001", False),
    ]
    assert body["webhooks"][1]["url"].endswith("/audience/***")
    assert body["webhooks"][0]["url"] == "https://elsewhere.example.org/hook?secret=abc"

    deleted = await client.delete(
        f"{HOOKS_PATH}/stale00001", params={"list_id": LIST_ID}, headers=admin
    )
    assert deleted.status_code == 204
    assert deleted.content == b""
    sent = mailchimp.requests[-1]
    assert (sent.method, sent.path, sent.json) == (
        "DELETE",
        f"/3.0/lists/{LIST_ID}/webhooks/stale00001",
        None,
    )
    assert [h["id"] for h in mailchimp.webhooks[LIST_ID]] == ["other00001"]


async def test_mailchimp_errors_come_back_as_502_with_title_and_detail(
    client: httpx.AsyncClient, mailchimp: MailchimpDouble, admin: dict[str, str]
) -> None:
    response = await client.post(
        HOOKS_PATH, json={"list_id": "nosuchlist", "url": "https://kave.example.com"}, headers=admin
    )
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "mailchimp_error"
    assert error["message"] == (
        "Mailchimp answered 404 Resource Not Found: The requested resource could not be found."
    )
    assert error["details"] == [
        {
            "mailchimp_status": 404,
            "title": "Resource Not Found",
            "detail": "The requested resource could not be found.",
        }
    ]
    assert "Traceback" not in response.text

    gone = await client.delete(
        f"{HOOKS_PATH}/nosuchhook", params={"list_id": LIST_ID}, headers=admin
    )
    assert gone.status_code == 502
    assert gone.json()["error"]["details"][0]["mailchimp_status"] == 404


async def test_validation_errors_from_mailchimp_keep_their_field_errors(
    client: httpx.AsyncClient, mailchimp: MailchimpDouble, admin: dict[str, str]
) -> None:
    payload = {"list_id": LIST_ID, "url": "https://kave.example.com"}
    assert (await client.post(HOOKS_PATH, json=payload, headers=admin)).status_code == 201
    again = await client.post(HOOKS_PATH, json=payload, headers=admin)
    assert again.status_code == 502
    detail = again.json()["error"]["details"][0]
    assert detail["title"] == "Invalid Resource"
    assert detail["errors"] == [{"field": "url", "message": "URL already exists"}]


def use_settings(app: Any, settings: Any) -> None:
    """Requests from here on see `settings` (the app reads them from its services)."""
    app.state.services = dataclasses.replace(app.state.services, settings=settings)


async def test_a_wrong_api_key_is_reported_without_the_key(
    app: Any, client: httpx.AsyncClient, mailchimp: MailchimpDouble, admin: dict[str, str]
) -> None:
    use_settings(
        app,
        with_mailchimp(
            app.state.settings, mailchimp, mailchimp_api_key=SecretStr("wrong-key-us19")
        ),
    )
    response = await client.get(HOOKS_PATH, params={"list_id": LIST_ID}, headers=admin)
    assert response.status_code == 502
    assert response.json()["error"]["details"][0]["title"] == "API Key Invalid"
    assert "wrong-key" not in response.text
    assert mailchimp.requests[-1].basic_auth == basic("wrong-key-us19")


async def test_unreachable_mailchimp_is_502(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    closed = "http://127.0.0.1:9/3.0"  # nothing listens on port 9
    use_settings(app, with_mailchimp(app.state.settings, None, mailchimp_api_base_url=closed))
    response = await client.get(HOOKS_PATH, params={"list_id": LIST_ID}, headers=admin)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "mailchimp_unreachable"


@pytest.mark.parametrize(
    "changes",
    [
        {"mailchimp_api_key": None},
        {"mailchimp_server_prefix": None},
        {"mailchimp_audience_webhook_token": None},
    ],
)
async def test_missing_configuration_is_a_clear_503(
    app: Any,
    client: httpx.AsyncClient,
    mailchimp: MailchimpDouble,
    admin: dict[str, str],
    changes: dict[str, Any],
) -> None:
    use_settings(app, with_mailchimp(app.state.settings, mailchimp, **changes))
    response = await client.post(
        HOOKS_PATH, json={"list_id": LIST_ID, "url": "https://kave.example.com"}, headers=admin
    )
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "mailchimp_not_configured"
    assert "MAILCHIMP_" in error["message"]
    assert "retry-after" not in response.headers
    assert mailchimp.requests == []


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"list_id": "../../x", "url": "https://kave.example.com"}, 422),
        ({"list_id": LIST_ID, "url": "ftp://kave.example.com"}, 400),
        ({"list_id": LIST_ID, "url": "kave.example.com"}, 400),
        ({"list_id": LIST_ID, "url": "https://kave.example.com/?a=1"}, 400),
        ({"list_id": LIST_ID, "url": TOKEN_URL}, 400),
        ({"list_id": LIST_ID, "url": "https://kave.example.com", "events": ["bounce"]}, 422),
        ({"list_id": LIST_ID, "url": "https://kave.example.com", "sources": []}, 422),
    ],
)
async def test_bad_requests_never_reach_mailchimp(
    client: httpx.AsyncClient,
    mailchimp: MailchimpDouble,
    admin: dict[str, str],
    payload: dict[str, Any],
    status: int,
) -> None:
    response = await client.post(HOOKS_PATH, json=payload, headers=admin)
    assert response.status_code == status
    assert mailchimp.requests == []


async def test_needs_users_admin(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    assert (await client.get(HOOKS_PATH, params={"list_id": LIST_ID})).status_code == 401
    reader = await bearer(session, settings, "events:read")
    response = await client.get(HOOKS_PATH, params={"list_id": LIST_ID}, headers=reader)
    assert response.status_code == 403


# --- the building blocks --------------------------------------------------------------------


def test_webhook_url_from_a_base_url() -> None:
    # Every character the settings allow in a token goes into the URL as it is.
    token = SecretStr("Zq3-x_Y.9~aB7cD8eF9gH0iJ")
    assert audience_webhook_url("https://kave.example.com", token) == (
        "https://kave.example.com/api/v1/webhooks/mailchimp/audience/Zq3-x_Y.9~aB7cD8eF9gH0iJ"
    )
    assert audience_webhook_url(" http://10.0.0.5:8080/kave/ ", token) == (
        "http://10.0.0.5:8080/kave/api/v1/webhooks/mailchimp/audience/Zq3-x_Y.9~aB7cD8eF9gH0iJ"
    )
    assert points_at_kave(audience_webhook_url("https://x.example", token), token)
    for bad in ["", "https://", "https://x.example:99999", "mailto:a@b.c", "https://x#y"]:
        with pytest.raises(InvalidPublicUrl):
            audience_webhook_url(bad, token)
    with pytest.raises(MailchimpNotConfigured):
        audience_webhook_url("https://kave.example.com", None)


def test_masking() -> None:
    assert mask_webhook_url(TOKEN_URL) == (
        "https://kave.example.com/api/v1/webhooks/mailchimp/audience/***"
    )
    assert mask_webhook_url("https://other.example/hook") == "https://other.example/hook"


def test_the_real_api_host_is_built_from_the_prefix(settings: Settings) -> None:
    real = with_mailchimp(settings, None)
    config = mailchimp_config(real)
    assert config.api_root == "https://us19.api.mailchimp.com/3.0"
    assert API_KEY not in repr(config)
    with pytest.raises(MailchimpNotConfigured):
        mailchimp_config(with_mailchimp(settings, None, mailchimp_server_prefix="us19.evil.com/"))


# --- the CLI ----------------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> CliRunner:
    monkeypatch.setattr(audience_cli, "load_cli_settings", lambda: settings)
    return CliRunner()


def test_cli_register_sends_exactly_this_request(
    cli: CliRunner, mailchimp: MailchimpDouble
) -> None:
    result = cli.invoke(
        audience_app,
        [
            "register",
            "--list-id",
            LIST_ID,
            "--url",
            "https://kave.example.com",
            "--events",
            "subscribe,unsubscribe",
            "--events",
            "cleaned",
            "--sources",
            "user",
        ],
    )
    assert result.exit_code == 0, result.output
    [sent] = mailchimp.requests
    assert (sent.method, sent.path) == ("POST", f"/3.0/lists/{LIST_ID}/webhooks")
    assert sent.basic_auth == basic(API_KEY)
    assert sent.json == {
        "url": TOKEN_URL,
        "events": {
            "subscribe": True,
            "unsubscribe": True,
            "profile": False,
            "cleaned": True,
            "upemail": False,
            "campaign": False,
        },
        "sources": {"user": True, "admin": False, "api": False},
    }
    printed = json.loads(result.stdout)
    assert printed["points_at_kave"] is True
    assert TOKEN not in result.output


def test_cli_list_and_delete(cli: CliRunner, mailchimp: MailchimpDouble) -> None:
    assert (
        cli.invoke(
            audience_app, ["register", "--list-id", LIST_ID, "--url", "https://kave.example.com"]
        ).exit_code
        == 0
    )
    listed = cli.invoke(audience_app, ["list", "--list-id", LIST_ID])
    assert listed.exit_code == 0, listed.output
    [hook] = json.loads(listed.stdout)["webhooks"]
    deleted = cli.invoke(audience_app, ["delete", "--list-id", LIST_ID, "--webhook-id", hook["id"]])
    assert deleted.exit_code == 0, deleted.output
    assert mailchimp.requests[-1].method == "DELETE"
    assert mailchimp.requests[-1].path == f"/3.0/lists/{LIST_ID}/webhooks/{hook['id']}"
    assert mailchimp.webhooks[LIST_ID] == []


def test_cli_reports_mailchimp_errors_on_stderr(cli: CliRunner, mailchimp: MailchimpDouble) -> None:
    result = cli.invoke(audience_app, ["list", "--list-id", "nosuchlist"])
    assert result.exit_code == 1
    assert "mailchimp_error: Mailchimp answered 404 Resource Not Found" in result.stderr
    assert "Traceback" not in result.output


def test_cli_refuses_unknown_events(cli: CliRunner, mailchimp: MailchimpDouble) -> None:
    result = cli.invoke(
        audience_app,
        ["register", "--list-id", LIST_ID, "--url", "https://k.example", "--events", "bounce"],
    )
    assert result.exit_code == 2
    assert "bounce" in result.output
    assert mailchimp.requests == []
