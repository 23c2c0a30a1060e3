"""Every error status the API can produce comes back in the one envelope with the request id."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.core.middleware import SMALL_BODY_BYTES
from app.emails.errors import EmailNotFound
from app.processing.models import WebhookEvent
from app.tests.support import WEBHOOK_PATH, inbound_event, signed_form


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], list)
    assert error["request_id"] == response.headers["X-Request-ID"]
    return error


async def test_unknown_route_is_404_envelope(client: httpx.AsyncClient) -> None:
    assert_envelope(await client.get("/api/v1/nothing-here"), 404, "not_found")


async def test_wrong_method_is_405_envelope(client: httpx.AsyncClient) -> None:
    assert_envelope(await client.delete("/health/live"), 405, "method_not_allowed")


async def test_body_over_limit_by_content_length_is_413(
    client: httpx.AsyncClient, settings: Any
) -> None:
    body = b"x" * (settings.max_body_bytes + 1)
    error = assert_envelope(await client.post(WEBHOOK_PATH, content=body), 413, "payload_too_large")
    assert str(settings.max_body_bytes) in error["message"]


@pytest.mark.parametrize("settings_overrides", [{"max_body_bytes": 4096}])
async def test_streamed_body_over_limit_is_413(client: httpx.AsyncClient) -> None:
    async def chunks():  # no Content-Length: the limit is enforced while streaming
        for _ in range(10):
            yield b"y" * 1024

    response = await client.post(WEBHOOK_PATH, content=chunks())
    assert "content-length" not in response.request.headers
    assert_envelope(response, 413, "payload_too_large")


async def test_domain_error_and_unexpected_error(app: FastAPI, client: httpx.AsyncClient) -> None:
    @app.get("/boom-domain")
    async def boom_domain() -> None:
        raise EmailNotFound()

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    assert_envelope(await client.get("/boom-domain"), 404, "email_not_found")
    response = await client.get("/boom")
    error = assert_envelope(response, 500, "internal_error")
    assert "hunter2" not in response.text and "Traceback" not in response.text
    assert error["message"] == "An unexpected error occurred."


async def test_validation_error_is_422_envelope(app: FastAPI, client: httpx.AsyncClient) -> None:
    @app.get("/needs-int")
    async def needs_int(n: int) -> dict[str, int]:
        return {"n": n}

    error = assert_envelope(await client.get("/needs-int?n=abc"), 422, "validation_error")
    assert error["details"][0]["loc"] == ["query", "n"]
    assert "abc" not in str(error["details"])  # the input itself is never echoed
    # The message names what is wrong, and where.
    assert error["message"].startswith("The request is not valid: query parameter 'n': Input")
    assert "abc" not in error["message"]
    broken = await client.post(
        "/api/v1/users", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    error = assert_envelope(broken, 422, "validation_error")
    assert error["message"] == "The request is not valid: body: JSON decode error."


async def test_request_id_is_honoured_or_generated(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live", headers={"X-Request-ID": "abc-123.def"})
    assert response.headers["X-Request-ID"] == "abc-123.def"
    generated = await client.get("/health/live", headers={"X-Request-ID": "bad id!" * 30})
    assert generated.headers["X-Request-ID"] != "bad id"
    assert len(generated.headers["X-Request-ID"]) == 32


async def test_security_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "Cache-Control" not in response.headers  # probes are not API data
    api = await client.get("/api/v1/nothing-here")
    assert api.headers["Cache-Control"] == "no-store"
    docs = await client.get("/api/v1/docs")
    assert docs.status_code == 200
    assert "default-src 'none'" not in docs.headers["Content-Security-Policy"]


async def test_openapi_and_docs(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/api/v1/openapi.json")).json()
    assert spec["info"]["title"] == "Kave"
    assert "/api/v1/webhooks/mailchimp" in spec["paths"]
    assert (await client.get("/api/v1/redoc")).status_code == 200


@pytest.mark.parametrize("settings_overrides", [{"cors_origins": "https://ops.example.com"}])
async def test_cors_from_settings(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/health/live",
        headers={"Origin": "https://ops.example.com", "Access-Control-Request-Method": "GET"},
    )
    assert response.headers["access-control-allow-origin"] == "https://ops.example.com"
    other = await client.get("/health/live", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


async def test_health(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health/live")).json() == {"status": "ok", "checks": {}}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "storage": "ok"}


async def test_ready_is_503_when_database_is_gone(app: FastAPI, client: httpx.AsyncClient) -> None:
    from app.db.session import build_engine, build_session_factory

    broken = build_engine(
        app.state.settings, database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none"
    )
    original = app.state.services.session_factory
    app.state.services.session_factory = build_session_factory(broken)
    try:
        error = assert_envelope(await client.get("/health/ready"), 503, "service_unavailable")
        assert {"check": "database", "status": "unavailable"} in error["details"]
        assert {"check": "storage", "status": "ok"} in error["details"]
    finally:
        app.state.services.session_factory = original
        await broken.dispose()


@pytest.mark.parametrize("settings_overrides", [{"log_format": "json", "log_level": "INFO"}])
async def test_access_log_has_one_line_per_request_and_no_path_secret(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    await client.get("/api/v1/webhooks/mailchimp/audience/audience-token-for-tests")
    await client.get("/health/live")
    text = capsys.readouterr().err
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    lines = [r for r in records if r.get("logger") == "app.access"]
    assert len(lines) == 2
    first, second = lines
    assert first["path"] == "/api/v1/webhooks/mailchimp/audience/***"
    assert first["status"] == 200
    assert second["path"] == "/health/live"
    assert {"method", "path", "status", "duration_ms", "request_id"} <= set(second)
    assert "audience-token-for-tests" not in text


async def test_ready_is_503_on_an_unmigrated_database(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Any
) -> None:
    from app.db.session import build_engine, build_session_factory

    empty = build_engine(app.state.settings, database_url=f"sqlite+aiosqlite:///{tmp_path}/e.db")
    original = app.state.services.session_factory
    app.state.services.session_factory = build_session_factory(empty)
    try:
        error = assert_envelope(await client.get("/health/ready"), 503, "service_unavailable")
        assert {"check": "database", "status": "unavailable"} in error["details"]
    finally:
        app.state.services.session_factory = original
        await empty.dispose()


async def _chunks(size: int, piece: bytes = b"y") -> AsyncIterator[bytes]:
    for _ in range(size // 65536):
        yield piece * 65536


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/v1/auth/token", "application/x-www-form-urlencoded"),
        ("/api/v1/users", "application/json"),
        (
            "/api/v1/webhooks/mailchimp/audience/audience-token-for-tests",
            "application/x-www-form-urlencoded",
        ),
    ],
)
@pytest.mark.parametrize("declared", [False, True], ids=["chunked", "content-length"])
async def test_over_limit_bodies_elsewhere_are_413_envelopes(
    client: httpx.AsyncClient, path: str, content_type: str, declared: bool
) -> None:
    # Routes other than the Mandrill webhook take SMALL_BODY_BYTES, declared or streamed.
    size = 2 * SMALL_BODY_BYTES
    headers = {"Content-Type": content_type}
    if declared:
        headers["Content-Length"] = str(size)
    response = await client.post(path, content=_chunks(size), headers=headers)
    assert ("content-length" in response.request.headers) == declared
    error = assert_envelope(response, 413, "payload_too_large")
    assert str(SMALL_BODY_BYTES) in error["message"]


@pytest.mark.parametrize("settings_overrides", [{"max_body_bytes": 4096}])
@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/v1/auth/token", "application/x-www-form-urlencoded"),
        ("/api/v1/users", "application/json"),
    ],
)
async def test_a_chunked_over_limit_body_is_413_not_400(
    client: httpx.AsyncClient, path: str, content_type: str
) -> None:
    # FastAPI turns a body it failed to read into a 400; the edge answers its 413 instead.
    response = await client.post(
        path, content=_chunks(65536 * 2), headers={"Content-Type": content_type}
    )
    assert "content-length" not in response.request.headers
    error = assert_envelope(response, 413, "payload_too_large")
    assert "4096" in error["message"]


async def test_a_trailing_slash_is_a_404_envelope_never_a_redirect(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    body, headers = signed_form([inbound_event()])
    response = await client.post(WEBHOOK_PATH + "/", content=body, headers=headers)
    assert_envelope(response, 404, "not_found")
    assert "location" not in response.headers
    for path in ("/api/v1/emails/", "/health/live/", "/api/v1/auth/token/"):
        assert_envelope(await client.request("GET", path), 404, "not_found")
    assert (await client.head(WEBHOOK_PATH)).status_code == 200  # Mailchimp's URL check
    async with app.state.services.session_factory() as s:
        assert await s.scalar(select(func.count()).select_from(WebhookEvent)) == 0


@pytest.mark.parametrize("settings_overrides", [{"cors_origins": "https://ops.example.com"}])
@pytest.mark.parametrize(
    ("origin", "method", "refused"),
    [
        ("https://evil.example", "GET", [{"refused": "origin"}]),
        ("https://ops.example.com", "PUT", [{"refused": "method"}]),
        ("https://evil.example", "PUT", [{"refused": "origin"}, {"refused": "method"}]),
    ],
)
async def test_a_refused_cors_preflight_is_a_403_envelope(
    client: httpx.AsyncClient, origin: str, method: str, refused: list[dict[str, str]]
) -> None:
    response = await client.options(
        "/api/v1/emails", headers={"Origin": origin, "Access-Control-Request-Method": method}
    )
    error = assert_envelope(response, 403, "cors_not_allowed")
    assert error["details"] == refused
    assert response.headers["content-type"] == "application/json"
    if {"refused": "origin"} in refused:
        assert "access-control-allow-origin" not in response.headers
    assert response.headers["vary"].startswith("Origin")


@pytest.mark.parametrize("path", ["/health/live", "/health/ready"])
async def test_head_on_the_probes_answers_as_get_without_a_body(
    client: httpx.AsyncClient, path: str
) -> None:
    get = await client.get(path)
    head = await client.head(path)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"] != "0"
    assert head.headers["content-type"] == get.headers["content-type"]


async def test_head_on_ready_is_503_without_a_body_when_not_ready(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    from app.db.session import build_engine, build_session_factory

    broken = build_engine(
        app.state.settings, database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none"
    )
    original = app.state.services.session_factory
    app.state.services.session_factory = build_session_factory(broken)
    try:
        response = await client.head("/health/ready")
        assert response.status_code == 503
        assert response.content == b""
        assert response.headers["retry-after"] == "5"
    finally:
        app.state.services.session_factory = original
        await broken.dispose()
