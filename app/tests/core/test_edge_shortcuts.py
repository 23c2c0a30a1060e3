"""A route served through the edge's shortcut answers exactly as it does through the framework:
same bodies, statuses, envelopes, headers and metric labels, for success and every failure."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, HTTPException, Request, Response
from prometheus_client import REGISTRY

from app.core.errors import register_error_handlers
from app.core.middleware import EdgeMiddleware
from app.emails.errors import EmailNotFound

PATH = "/api/v1/edge-check"


async def endpoint(request: Request) -> Response:
    mode = request.query_params.get("mode")
    if mode == "domain":
        raise EmailNotFound()
    if mode == "http":
        raise HTTPException(status_code=415, detail="Not this media type.")
    if mode == "crash":
        raise RuntimeError("secret internals: password=hunter2")
    body = await request.body()
    return Response(b"got %d" % len(body), media_type="text/plain")


def build(*, shortcut: bool) -> FastAPI:
    app = FastAPI()
    register_error_handlers(app)
    app.add_api_route(PATH, endpoint, methods=["POST"])
    app.add_middleware(
        EdgeMiddleware,
        max_body_bytes=1000,
        api_prefix="/api/v1",
        metric_prefixes=["/api/v1"],
        shortcuts={("POST", PATH): endpoint} if shortcut else None,
    )
    return app


@pytest.fixture
async def clients() -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    def client(app: FastAPI) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")

    async with client(build(shortcut=True)) as fast, client(build(shortcut=False)) as framework:
        yield fast, framework


def comparable(response: httpx.Response) -> tuple[int, object, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k != "x-request-id"}
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        body["error"]["request_id"] = None
        return response.status_code, body, headers
    return response.status_code, response.content, headers


@pytest.mark.parametrize(
    ("query", "content", "status"),
    [
        ("", b"x" * 10, 200),
        ("?mode=domain", b"", 404),
        ("?mode=http", b"", 415),
        ("?mode=crash", b"", 500),
        ("", b"x" * 2000, 413),
    ],
)
async def test_shortcut_answers_as_the_framework_does(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], query: str, content: bytes, status: int
) -> None:
    fast, framework = clients
    by_shortcut = await fast.post(PATH + query, content=content)
    by_framework = await framework.post(PATH + query, content=content)
    assert by_shortcut.status_code == status
    assert comparable(by_shortcut) == comparable(by_framework)
    assert "hunter2" not in by_shortcut.text


async def test_shortcut_requests_are_labelled_by_their_route(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    labels = {"method": "POST", "route": PATH, "status": "200"}
    before = REGISTRY.get_sample_value("kave_http_requests_total", labels) or 0.0
    await clients[0].post(PATH, content=b"ok")
    assert REGISTRY.get_sample_value("kave_http_requests_total", labels) == before + 1
