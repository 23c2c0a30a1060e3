"""GET /metrics: Prometheus text, route templates as labels, token protection, moving counters.

The counters live in the process-wide registry shared by every app a test session builds, so
these tests compare a scrape after with a scrape before, never absolute values.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.http_metrics import UNKNOWN_PREFIX, UNMATCHED, route_template
from app.db.session import build_session_factory
from app.processing.models import WebhookEvent
from app.tests.observability.scrape import Scrape
from app.tests.server_process import free_port
from app.tests.support import build_message, inbound_event, message_event, post_events, wait_until

AUDIENCE_SECRET = "audience-secret-in-the-path-" + uuid.uuid4().hex
REQUESTS = "kave_http_requests_total"


async def scrape(client: httpx.AsyncClient, **headers: str) -> Scrape:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape(response.text)


async def processed(app: FastAPI) -> int:
    async with app.state.services.session_factory() as session:
        stmt = select(func.count()).where(WebhookEvent.status == "processed")
        return int(await session.scalar(stmt) or 0)


async def test_request_labels_are_route_templates_never_raw_paths(
    client: httpx.AsyncClient,
) -> None:
    before = await scrape(client)
    email_id = uuid.uuid4()
    assert (await client.get("/health/live")).status_code == 200
    assert (await client.get(f"/api/v1/emails/{email_id}")).status_code == 401
    audience = await client.get(f"/api/v1/webhooks/mailchimp/audience/{AUDIENCE_SECRET}")
    assert audience.status_code == 404
    assert (await client.get(f"/no/such/path/{email_id}")).status_code == 404
    assert (await client.delete("/health/live")).status_code == 405
    after = await scrape(client)

    def moved(route: str, status: str, method: str = "GET") -> float:
        return after.delta(before, REQUESTS, route=route, status=status, method=method)

    assert moved("/health/live", "200") == 1
    assert moved("/api/v1/emails/{email_id}", "401") == 1
    assert moved("/api/v1/webhooks/mailchimp/audience/{token}", "404") == 1
    assert moved(UNMATCHED, "404") == 1
    assert moved("/health/live", "405", method="DELETE") == 1
    # The scrape itself is counted too, under its own template.
    assert moved("/metrics", "200") == 1
    assert (
        after.delta(
            before, "kave_http_request_duration_seconds_count", route="/health/live", status="200"
        )
        == 1
    )
    assert AUDIENCE_SECRET not in after.text
    assert str(email_id) not in after.text
    assert all(
        route == UNMATCHED or route.startswith("/")
        for route in after.label_values(REQUESTS, "route")
    )


def test_route_template_keeps_only_known_prefixes() -> None:
    class Route:
        path_format = "/items/{item_id}"

    scope: dict[str, Any] = {"route": Route(), "path": "/api/v1/items/42", "root_path": ""}
    assert route_template(scope, frozenset({"/api/v1"})) == "/api/v1/items/{item_id}"
    # A prefix nobody declared may hold a value (a tenant, a token): it is never echoed.
    assert route_template(scope, frozenset()) == UNKNOWN_PREFIX + "/items/{item_id}"
    assert route_template({"path": "/x"}) == UNMATCHED
    with_root = {"route": Route(), "path": "/proxy/items/42", "root_path": "/proxy"}
    assert route_template(with_root) == "/items/{item_id}"


async def test_metrics_is_outside_the_api_and_the_openapi_schema(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/api/v1/openapi.json")).json()
    assert not any("metrics" in path for path in schema["paths"])
    assert (await client.get("/api/v1/metrics")).status_code == 404


@pytest.mark.parametrize("settings_overrides", [{"metrics_token": "scrape-token-123"}])
async def test_metrics_token_is_required_when_set(client: httpx.AsyncClient) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": "Basic scrape-token-123"},
        {"Authorization": "scrape-token-123"},
        {"Authorization": "Bearer scrape-token-12"},
    ):
        response = await client.get("/metrics", headers=headers)
        assert response.status_code == 401, headers
        body = response.json()
        assert body["error"]["code"] == "not_authenticated"
        assert body["error"]["request_id"] == response.headers["X-Request-ID"]
        assert response.headers["WWW-Authenticate"] == "Bearer"
    ok = await scrape(client, Authorization="Bearer scrape-token-123")
    assert ok.total("kave_events_backlog_up") == 1
    assert (
        await client.get("/metrics", headers={"Authorization": "bearer scrape-token-123"})
    ).status_code == 200


async def test_event_counters_move_as_events_are_received_and_processed(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    before = await scrape(client)
    start = await processed(app)
    batch = [
        inbound_event(
            build_message(subject=f"metrics {i}", attachments=[("a.txt", "text/plain", b"hi")])
        )
        for i in range(2)
    ]
    batch.append(message_event("open"))
    response = await post_events(client, batch)
    assert response.json() == {"accepted": 3, "duplicates": 0}

    async def all_processed() -> bool:
        return await processed(app) - start >= 3

    await wait_until(all_processed)
    again = await post_events(client, batch)
    assert again.json() == {"accepted": 0, "duplicates": 3}
    after = await scrape(client)

    assert after.delta(before, "kave_events_received_total", kind="inbound") == 4
    assert after.delta(before, "kave_events_received_total", kind="message") == 2
    assert after.delta(before, "kave_events_stored_total") == 3
    assert after.delta(before, "kave_events_duplicate_total") == 3
    assert after.delta(before, "kave_events_processed_total", kind="inbound") == 2
    assert after.delta(before, "kave_events_processed_total", kind="message") == 1
    assert after.delta(before, "kave_events_failed_total") == 0
    assert after.delta(before, "kave_event_tasks_total", kind="inbound", outcome="processed") == 2
    assert after.delta(before, "kave_event_task_seconds_count", kind="inbound") == 2
    route = "/api/v1/webhooks/mailchimp"
    assert after.delta(before, REQUESTS, route=route, method="POST", status="200") == 2
    assert after.value("kave_events_unprocessed") == 0
    assert after.value("kave_events_oldest_unprocessed_age_seconds") == 0


@pytest.mark.parametrize("settings_overrides", [{"processing_enabled": False}])
async def test_backlog_gauges_come_from_the_database(client: httpx.AsyncClient) -> None:
    response = await post_events(client, [message_event("open"), message_event("click")])
    assert response.json()["accepted"] == 2
    metrics = await scrape(client)
    assert metrics.value("kave_events_unprocessed") == 2
    assert metrics.value("kave_events_oldest_unprocessed_age_seconds") >= 0
    assert metrics.value("kave_events_backlog_up") == 1


async def test_scrape_survives_an_unreachable_database(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    # Nothing listens on this port: every connection attempt is refused.
    engine = create_async_engine(f"postgresql+asyncpg://kave@127.0.0.1:{free_port()}/kave")
    working = app.state.services.session_factory
    app.state.services.session_factory = build_session_factory(engine)
    try:
        metrics = await scrape(client)
    finally:
        app.state.services.session_factory = working
        await engine.dispose()
    assert metrics.value("kave_events_backlog_up") == 0
    unprocessed = metrics.value("kave_events_unprocessed")
    assert unprocessed != unprocessed  # NaN
    assert metrics.total("kave_http_requests_total") > 0
