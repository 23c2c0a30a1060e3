"""The audience webhook's token is in its path: no log line ever holds it, whatever the path
looks like (the route's own, a doubled slash, another case, a trailing part, a typo)."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI

from app.core.middleware import loggable_path, secrets_pattern
from app.tests.audience.support import FORM_HEADERS, SUBSCRIBE, TOKEN, form_body

PREFIX = "/api/v1/webhooks/mailchimp/audience"
# Sent as they are written (httpx keeps doubled slashes and case as given).
VARIANTS = [
    f"{PREFIX}/{TOKEN}",
    f"{PREFIX}//{TOKEN}",
    f"{PREFIX}/{TOKEN}/",
    f"{PREFIX}/{TOKEN}/extra/part",
    f"{PREFIX}{TOKEN}",
    f"{PREFIX}/x{TOKEN}y",
    "/api/v1/webhooks//mailchimp//audience/" + TOKEN,
    "/API/V1/WEBHOOKS/MAILCHIMP/AUDIENCE/" + TOKEN.upper(),
    "/api/v1/webhooks/audience//" + TOKEN,
    f"{PREFIX}/%2F{TOKEN}",  # decoded in the ASGI path: a doubled slash again
    f"{PREFIX}/{TOKEN}%00",
    # Not under the prefix at all: masked because it is the configured token.
    f"/api/v1/{TOKEN}",
    f"/{TOKEN.upper()}",
    f"/api/v1/webhooks/mailchimp/{TOKEN}",
]


def _lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("settings_overrides", [{"log_format": "json", "log_level": "DEBUG"}])
async def test_no_log_line_holds_the_token_whatever_the_path(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    statuses = []
    for path in VARIANTS:
        statuses.append((await client.get(path)).status_code)
        body = form_body(SUBSCRIBE)
        statuses.append((await client.post(path, content=body, headers=FORM_HEADERS)).status_code)
    text = capsys.readouterr().err
    assert TOKEN not in text and TOKEN.upper() not in text
    assert TOKEN.lower()[:12] not in text.lower()  # not even its beginning
    access = [line for line in _lines(text) if line.get("logger") == "app.access"]
    assert len(access) == 2 * len(VARIANTS)
    assert all("***" in str(line["path"]) for line in access), [a["path"] for a in access]
    assert statuses[:2] == [200, 200]  # the route itself still works


@pytest.mark.parametrize("settings_overrides", [{"log_format": "json", "log_level": "INFO"}])
async def test_the_error_log_of_a_failing_request_holds_no_token(
    app: FastAPI, client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    @app.get(PREFIX + "/{token}/boom")
    async def boom(token: str) -> None:
        raise RuntimeError("a bug")

    capsys.readouterr()
    response = await client.get(f"{PREFIX}/{TOKEN}/boom")
    assert response.status_code == 500
    text = capsys.readouterr().err
    events = {line.get("event") for line in _lines(text)}
    assert {"request.unhandled_exception", "http.request"} <= events
    assert TOKEN not in text


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        (f"{PREFIX}/abc", f"{PREFIX}/***"),
        (f"{PREFIX}//abc", f"{PREFIX}/***"),
        (f"{PREFIX}/abc/def", f"{PREFIX}/***"),
        (f"{PREFIX}/./abc", f"{PREFIX}/***"),
        (
            "/api/v1/webhooks/mailchimp/x/../audience/abc",
            "/api/v1/webhooks/mailchimp/x/../audience/***",
        ),
        ("/api/v1/Webhooks/MailChimp/Audience/abc", "/api/v1/Webhooks/MailChimp/Audience/***"),
        (f"{PREFIX}abc", f"{PREFIX}/***"),
        (f"{PREFIX}\nabc", f"{PREFIX}/***"),
        # Nothing after the prefix, or not under it: unchanged.
        (PREFIX, PREFIX),
        ("/api/v1/webhooks/mailchimp", "/api/v1/webhooks/mailchimp"),
        ("/api/v1/audience-events", "/api/v1/audience-events"),
        ("/api/v1/emails/3f0c7a52", "/api/v1/emails/3f0c7a52"),
    ],
)
def test_loggable_path(path: str, logged: str) -> None:
    assert loggable_path(path) == logged


def test_configured_secrets_are_masked_anywhere() -> None:
    secrets = secrets_pattern(["s3cret-token-value", ""])
    assert loggable_path("/x/S3CRET-TOKEN-VALUE/y", secrets) == "/x/***/y"
    assert loggable_path("/health/live", secrets) == "/health/live"
    assert secrets_pattern([]) is None and secrets_pattern([""]) is None
