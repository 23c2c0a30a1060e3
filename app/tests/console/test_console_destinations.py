"""The destinations pages over HTTP: the list, one destination with its notifications and
their attempts, the test ping, replay of a failed notification, scope and CSRF refusals.

Notifications fail for real: the destination points at a local port nobody listens on."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.tests.console.test_console_http import csrf_of, sign_in
from app.tests.destinations.receiver import receiver
from app.tests.destinations.support import FAST_OUTLET, add_destination, send_mail
from app.tests.fixtures.api import MakeUser
from app.tests.support import wait_until


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return FAST_OUTLET | {
        "destinations_allow_private_networks": True,
        "notification_failing_threshold": 2,
    }


@pytest.fixture
async def operator(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # https: the session cookie is Secure outside development, and httpx honours that.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://kave.test") as c:
        yield c


def closed_port_url() -> str:
    """A loopback URL whose port was just free: connecting to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


async def notifications(
    client: httpx.AsyncClient, headers: dict[str, str], destination_id: str, status: str = ""
) -> list[dict[str, Any]]:
    query = f"?status={status}" if status else ""
    answer = await client.get(
        f"/api/v1/destinations/{destination_id}/notifications{query}", headers=headers
    )
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def failing_destination(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A destination on a closed port, and its notification once every retry has failed."""
    destination = await add_destination(client, headers, closed_port_url(), "inbox@*")
    await send_mail(client, subject="Nobody listens")

    async def failed() -> bool:
        return bool(await notifications(client, headers, destination["id"], "failed"))

    await wait_until(failed)
    (notification,) = await notifications(client, headers, destination["id"], "failed")
    return destination, notification


async def attempt_count(
    client: httpx.AsyncClient, headers: dict[str, str], notification_id: str
) -> int:
    answer = await client.get(f"/api/v1/notifications/{notification_id}", headers=headers)
    return len(answer.json()["attempt_log"])


async def test_list_and_detail_show_status_notifications_and_attempts(
    operator: httpx.AsyncClient,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    make_user: MakeUser,
) -> None:
    destination, notification = await failing_destination(client, admin_headers)
    user = await make_user(scopes=["destinations:admin"])
    await sign_in(operator, user.email)

    home = await operator.get("/console/")
    assert 'href="/console/destinations"' in home.text  # the nav link
    listed = await operator.get("/console/destinations")
    assert listed.status_code == 200
    assert destination["url"] in listed.text
    assert f'href="/console/destinations/{destination["id"]}"' in listed.text
    assert "inbox@*" in listed.text
    assert "status-failing" in listed.text

    detail = await operator.get(f"/console/destinations/{destination['id']}")
    assert detail.status_code == 200
    assert "email.received" in detail.text
    assert "status-failed" in detail.text
    assert "no answer" in detail.text  # the attempts: refused connections have no status code
    assert f'action="/console/notifications/{notification["id"]}/replay"' in detail.text
    assert "Send test ping" in detail.text

    delivered = await operator.get(f"/console/destinations/{destination['id']}?status=delivered")
    assert "No notifications match this filter" in delivered.text
    odd = await operator.get(f"/console/destinations/{destination['id']}?status=odd&cursor=x")
    assert odd.status_code == 200
    assert "There is no status “odd”" in odd.text
    assert "The page link is not valid any more" in odd.text
    assert "status-failed" in odd.text  # shown unfiltered, from the first page

    unknown = await operator.get("/console/destinations/00000000-0000-0000-0000-000000000000")
    assert unknown.status_code == 404
    assert "text/html" in unknown.headers["content-type"]


async def test_notifications_page_by_cursor(
    operator: httpx.AsyncClient,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("app.console.destinations.PAGE_SIZE", 1)
    async with receiver() as hook:
        destination = await add_destination(client, admin_headers, hook.url)
        await send_mail(client, subject="First")
        await send_mail(client, subject="Second")
        await hook.wait_for(2)
    user = await make_user(scopes=["destinations:admin"])
    await sign_in(operator, user.email)
    first = await operator.get(f"/console/destinations/{destination['id']}")
    assert first.text.count("status-delivered") == 1
    older = first.text.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
    second = await operator.get(older)
    assert second.text.count("status-delivered") == 1
    assert "Newest notifications" in second.text
    assert 'rel="next"' not in second.text


async def test_replay_a_failed_notification_sends_it_again(
    operator: httpx.AsyncClient,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    make_user: MakeUser,
) -> None:
    destination, notification = await failing_destination(client, admin_headers)
    before = await attempt_count(client, admin_headers, notification["id"])
    user = await make_user(scopes=["destinations:admin"])
    await sign_in(operator, user.email)
    page = await operator.get(f"/console/destinations/{destination['id']}")

    replayed = await operator.post(
        f"/console/notifications/{notification['id']}/replay", data={"csrf": csrf_of(page)}
    )
    assert replayed.status_code == 303
    assert replayed.headers["location"] == (
        f"/console/destinations/{destination['id']}?replayed=true"
    )
    shown = await operator.get(replayed.headers["location"])
    assert "back in the queue" in shown.text

    async def tried_again() -> bool:
        return await attempt_count(client, admin_headers, notification["id"]) > before

    await wait_until(tried_again)


async def test_send_a_test_ping_from_the_page(
    operator: httpx.AsyncClient,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    make_user: MakeUser,
) -> None:
    user = await make_user(scopes=["destinations:admin"])
    await sign_in(operator, user.email)
    async with receiver() as hook:
        destination = await add_destination(client, admin_headers, hook.url)
        page = await operator.get(f"/console/destinations/{destination['id']}")
        sent = await operator.post(
            f"/console/destinations/{destination['id']}/test", data={"csrf": csrf_of(page)}
        )
        (ping,) = await hook.wait_for(1)
    assert sent.status_code == 303
    assert sent.headers["location"].endswith("?pinged=200")
    assert b'"type":"ping"' in ping.body.replace(b" ", b"")
    shown = await operator.get(sent.headers["location"])
    assert "The test ping was delivered (HTTP 200)" in shown.text
    assert "HTTP 200" in shown.text.split("<h2>Notifications</h2>")[1]  # its attempt, listed

    closed = await add_destination(client, admin_headers, closed_port_url())
    failed = await operator.post(
        f"/console/destinations/{closed['id']}/test", data={"csrf": csrf_of(page)}
    )
    assert failed.headers["location"].endswith("?pinged=failed")
    assert "The test ping failed" in (await operator.get(failed.headers["location"])).text
    spoofed = await operator.get(f"/console/destinations/{closed['id']}?pinged=2%20ok")
    assert spoofed.status_code == 200
    assert "The test ping" not in spoofed.text  # only what the ping route itself puts there


async def test_without_the_scope_pages_and_actions_are_refused(
    operator: httpx.AsyncClient,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    make_user: MakeUser,
) -> None:
    destination, notification = await failing_destination(client, admin_headers)
    before = await attempt_count(client, admin_headers, notification["id"])
    user = await make_user(scopes=["emails:read", "events:read"])
    await sign_in(operator, user.email)

    home = await operator.get("/console/")
    assert "/console/destinations" not in home.text
    for path in ("/console/destinations", f"/console/destinations/{destination['id']}"):
        refused = await operator.get(path)
        assert refused.status_code == 403
        assert "destinations:admin" in refused.text
    token = csrf_of(home)
    for action in (
        f"/console/notifications/{notification['id']}/replay",
        f"/console/destinations/{destination['id']}/test",
    ):
        refused = await operator.post(action, data={"csrf": token})
        assert refused.status_code == 403
        assert "destinations:admin" in refused.text
    assert await attempt_count(client, admin_headers, notification["id"]) == before
    assert await notifications(client, admin_headers, destination["id"], "failed")


async def test_actions_without_the_sessions_csrf_token_are_refused(
    operator: httpx.AsyncClient,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    make_user: MakeUser,
) -> None:
    destination, notification = await failing_destination(client, admin_headers)
    before = await attempt_count(client, admin_headers, notification["id"])
    user = await make_user(scopes=["destinations:admin"])
    await sign_in(operator, user.email)
    page = await operator.get(f"/console/destinations/{destination['id']}")
    for action in (
        f"/console/notifications/{notification['id']}/replay",
        f"/console/destinations/{destination['id']}/test",
    ):
        for token in ("", "forged", csrf_of(page)[:-2] + "AA"):
            refused = await operator.post(action, data={"csrf": token})
            assert refused.status_code == 403
            assert "security token" in refused.text
    assert await attempt_count(client, admin_headers, notification["id"]) == before
    assert len(await notifications(client, admin_headers, destination["id"])) == 1  # no ping
