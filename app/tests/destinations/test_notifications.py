"""Notifications end to end: a real webhook in, a real HTTP receiver out, verified with the
reference `standardwebhooks` library."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import httpx
import orjson
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from app.emails.links import signed_link
from app.tests.destinations.receiver import eventually, receiver
from app.tests.destinations.support import FAST_OUTLET, add_destination, send_mail

PDF = b"%PDF-1.4 " + bytes(range(256)) * 40


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return dict(FAST_OUTLET)


async def test_notification_verifies_and_carries_working_links(
    client: httpx.AsyncClient, admin_headers: dict[str, str], settings: Any
) -> None:
    async with receiver() as hook:
        destination = await add_destination(client, admin_headers, hook.url)
        assert destination["secret"].startswith("whsec_")
        listed = (await client.get("/api/v1/destinations", headers=admin_headers)).json()
        assert "secret" not in listed["items"][0]

        await send_mail(client, subject="Invoice", attachments=[("a.pdf", "application/pdf", PDF)])
        (request,) = await hook.wait_for(1)

    payload = Webhook(destination["secret"]).verify(request.body, request.headers)
    assert payload["type"] == "email.received"
    data = payload["data"]
    assert data["subject"] == "Invoice"
    assert data["envelope_recipient"] == "inbox@kave.example.com"
    assert data["from"]["email"] == "alice@example.org"
    # The same schema as GET /emails/{id}: every field the API shows is in the payload.
    shown = (await client.get(f"/api/v1/emails/{data['id']}", headers=admin_headers)).json()
    assert set(shown) <= set(data)
    assert request.headers["webhook-id"].startswith("msg_")

    tampered = bytearray(request.body)
    tampered[len(tampered) // 2] ^= 1
    with pytest.raises(WebhookVerificationError):
        Webhook(destination["secret"]).verify(bytes(tampered), request.headers)

    (attachment,) = data["attachments"]
    assert (attachment["name"], attachment["type"], attachment["size"]) == (
        "a.pdf",
        "application/pdf",
        len(PDF),
    )
    assert attachment["sha256"] == hashlib.sha256(PDF).hexdigest()
    download = await client.get(attachment["download_url"])  # no Authorization header
    assert download.status_code == 200
    assert download.content == PDF
    raw = await client.get(data["raw_url"])
    assert raw.status_code == 200 and b"Subject: Invoice" in raw.content

    url = attachment["download_url"]
    wrong = url[:-1] + ("0" if url[-1] != "0" else "1")  # one hex digit of the signature
    assert (await client.get(wrong)).status_code == 403
    expired, _ = signed_link(
        base_url="http://kave.test",
        secret_key=settings.secret_key,
        kind="attachments",
        target=uuid.UUID(attachment["id"]),
        ttl_seconds=-1,
    )
    refused = await client.get(expired)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "link_invalid"


async def test_recipient_patterns_route_mail_and_capture_the_tag(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    async with receiver() as support, receiver() as agents, receiver() as tagged:
        await add_destination(client, admin_headers, support.url, "support@*")
        await add_destination(client, admin_headers, agents.url, "*@agents.example.com")
        await add_destination(client, admin_headers, tagged.url, "agent+{tag}@agents.example.com")

        await send_mail(client, to="support@kave.example.com", subject="one")
        await send_mail(client, to="Agent+Sales@agents.example.com", subject="two")
        await send_mail(client, to="nobody@elsewhere.example.com", subject="three")
        await support.wait_for(1)
        await agents.wait_for(1)
        (tag_request,) = await tagged.wait_for(1)
        # The third email matches no pattern; once the second is delivered everywhere,
        # nothing else may have arrived anywhere.
        await eventually(lambda: len(agents.requests) == 1)

    subjects = {
        name: [orjson.loads(r.body)["data"]["subject"] for r in hook.requests]
        for name, hook in (("support", support), ("agents", agents), ("tagged", tagged))
    }
    assert subjects == {"support": ["one"], "agents": ["two"], "tagged": ["two"]}
    assert orjson.loads(tag_request.body)["data"]["tag"] == "sales"
    assert orjson.loads(agents.requests[0].body)["data"]["tag"] is None


async def test_third_attempt_after_two_failures_has_the_same_webhook_id(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    async with receiver() as hook:
        hook.statuses = [500, 503]
        destination = await add_destination(client, admin_headers, hook.url)
        await send_mail(client)
        requests = await hook.wait_for(3)
        path = f"/api/v1/destinations/{destination['id']}/notifications"

        async def delivered() -> bool:
            page = (await client.get(path, headers=admin_headers)).json()
            return bool(page["items"]) and page["items"][0]["status"] == "delivered"

        await eventually(delivered)

    assert len({r.headers["webhook-id"] for r in requests}) == 1
    for request in requests:
        Webhook(destination["secret"]).verify(request.body, request.headers)
    (notification,) = (await client.get(path, headers=admin_headers)).json()["items"]
    assert notification["attempts"] == 3
    assert notification["webhook_id"] == requests[0].headers["webhook-id"]
    detail = await client.get(f"/api/v1/notifications/{notification['id']}", headers=admin_headers)
    log = detail.json()["attempt_log"]
    assert [a["status_code"] for a in log] == [500, 503, 200]
    assert log[0]["response_body"] == "answer 500" and log[0]["error"] == "HTTP 500"
    assert all(a["latency_ms"] >= 0 for a in log)


async def test_schedule_used_up_fails_and_replay_sends_again(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    async with receiver() as hook:
        hook.statuses = [500, 500, 500, 500]  # one attempt and three retries: all fail
        destination = await add_destination(client, admin_headers, hook.url)
        await send_mail(client)
        path = f"/api/v1/destinations/{destination['id']}/notifications"

        async def listed(status: str) -> list[dict[str, Any]]:
            page = await client.get(path, params={"status": status}, headers=admin_headers)
            items: list[dict[str, Any]] = page.json()["items"]
            return items

        await eventually(lambda: listed("failed"))
        (failed,) = await listed("failed")
        assert failed["attempts"] == 4 and failed["last_status_code"] == 500
        assert await listed("delivered") == []

        replay = await client.post(
            f"/api/v1/notifications/{failed['id']}/replay", headers=admin_headers
        )
        assert replay.status_code == 202
        await eventually(lambda: listed("delivered"))
        again = await client.post(
            f"/api/v1/notifications/{failed['id']}/replay", headers=admin_headers
        )
        assert again.status_code == 202  # delivered is replayable too

        await hook.wait_for(6)
        await eventually(lambda: listed("delivered"))
        recovered = await client.post(
            f"/api/v1/destinations/{destination['id']}/recover",
            json={"since": "2000-01-01T00:00:00Z"},
            headers=admin_headers,
        )
        assert recovered.status_code == 202 and recovered.json() == {"requeued": 1}
        await hook.wait_for(7)
    assert len({r.headers["webhook-id"] for r in hook.requests}) == 1


async def test_gone_disables_the_destination(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    async with receiver() as hook:
        hook.statuses = [410]
        destination = await add_destination(client, admin_headers, hook.url)
        await send_mail(client)
        await hook.wait_for(1)
        url = f"/api/v1/destinations/{destination['id']}"

        async def disabled() -> bool:
            return (await client.get(url, headers=admin_headers)).json()["enabled"] is False

        await eventually(disabled)
        shown = (await client.get(url, headers=admin_headers)).json()
        assert "410" in shown["disabled_reason"]
        await send_mail(client, subject="not sent")

        async def both_stored() -> bool:
            emails = (await client.get("/api/v1/emails", headers=admin_headers)).json()
            return len(emails["items"]) == 2

        await eventually(both_stored)
        # A disabled destination is not written to: mail stored meanwhile is not queued for it.
        page = (await client.get(f"{url}/notifications", headers=admin_headers)).json()
        assert [n["status"] for n in page["items"]] == ["failed"]
    assert len(hook.requests) == 1


async def test_ping_rotation_and_paging(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    async with receiver() as hook:
        destination = await add_destination(client, admin_headers, hook.url)
        url = f"/api/v1/destinations/{destination['id']}"
        ping = await client.post(f"{url}/test", headers=admin_headers)
        assert ping.status_code == 200, ping.text
        assert ping.json()["status_code"] == 200 and ping.json()["error"] is None
        (first,) = hook.requests
        assert Webhook(destination["secret"]).verify(first.body, first.headers)["type"] == "ping"

        rotated = await client.post(f"{url}/rotate-secret", headers=admin_headers)
        new_secret = rotated.json()["secret"]
        assert new_secret != destination["secret"] and new_secret.startswith("whsec_")
        await client.post(f"{url}/test", headers=admin_headers)
        second = hook.requests[1]
        assert len(second.headers["webhook-signature"].split(" ")) == 2
        Webhook(new_secret).verify(second.body, second.headers)
        Webhook(destination["secret"]).verify(second.body, second.headers)

        page = await client.get(f"{url}/notifications", params={"limit": 1}, headers=admin_headers)
        assert len(page.json()["items"]) == 1 and page.json()["next_cursor"]
        rest = await client.get(
            f"{url}/notifications",
            params={"limit": 1, "cursor": page.json()["next_cursor"]},
            headers=admin_headers,
        )
        assert rest.json()["items"][0]["id"] != page.json()["items"][0]["id"]
        assert rest.json()["next_cursor"] is None
        bad = await client.get(
            f"{url}/notifications", params={"status": "x"}, headers=admin_headers
        )
        assert bad.status_code == 422


async def test_destination_validation_and_scope(
    client: httpx.AsyncClient, admin_headers: dict[str, str], token_for: Any
) -> None:
    bad_pattern = await client.post(
        "/api/v1/destinations",
        json={"url": "https://example.com/hook", "recipients": "a@b@c"},
        headers=admin_headers,
    )
    assert bad_pattern.status_code == 422
    ftp = await client.post(
        "/api/v1/destinations", json={"url": "ftp://example.com/"}, headers=admin_headers
    )
    assert ftp.status_code == 422 and ftp.json()["error"]["code"] == "destination_refused"
    reader = await token_for("emails:read")
    denied = await client.get("/api/v1/destinations", headers=reader)
    assert denied.status_code == 403
    missing = await client.get(f"/api/v1/destinations/{uuid.uuid4()}", headers=admin_headers)
    assert missing.status_code == 404
