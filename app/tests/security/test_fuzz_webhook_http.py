"""Hypothesis through the HTTP route: an authentic JSON array of anything is always a 200 that
accounts for every event, and it settles without a retry; a body that is not authentic is a
401 or a 400, never a 500, and stores nothing.

The app (and its database) is built once per test, not per example: duplicates across examples
are expected and still add up (`accepted + duplicates == len(events)`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.mandrill.signature import mandrill_signature
from app.processing.models import WebhookEvent
from app.tests.security.strategies import event_lists, json_text_with_surrogates
from app.tests.security.support import (
    run_in_thread,
    run_property,
    unexpected_outcomes,
    wait_settled,
)
from app.tests.support import WEBHOOK_KEY, WEBHOOK_PATH, WEBHOOK_URL, signed_form

HTTP_FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _json_text(events: list[Any]) -> str:
    try:
        return orjson.dumps(events).decode()
    except TypeError:  # lone surrogates: the stdlib writes them as \\u escapes, as JSON allows
        return json.dumps(events)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # Nothing is processed while Hypothesis generates (the worker's retry jitter would touch the
    # global `random` under Hypothesis's feet); the tests start the worker themselves.
    return {"processing_enabled": False, "worker_concurrency": 8}


async def _stored(app: FastAPI) -> int:
    async with app.state.services.session_factory() as s:
        return int(await s.scalar(select(func.count()).select_from(WebhookEvent)) or 0)


async def process_everything(app: FastAPI, expected: int) -> None:
    """Start the worker, hand it every stored event and wait until all of them settle."""
    worker = app.state.services.worker
    await worker.start()
    try:
        async with app.state.services.session_factory() as s:
            worker.submit((await s.scalars(select(WebhookEvent.id))).all())
        await wait_settled(app, expected, timeout=90)
    finally:
        await worker.stop()


async def test_any_signed_event_list_is_accepted_and_settles(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    loop = asyncio.get_running_loop()
    sent = {"examples": 0, "events": 0, "accepted": 0}

    async def post(text: str, expected: int) -> None:
        body, headers = signed_form(text)
        response = await client.post(WEBHOOK_PATH, content=body, headers=headers)
        assert response.status_code == 200, (response.status_code, response.text[:500], text[:300])
        ack = response.json()
        assert ack["accepted"] + ack["duplicates"] == expected, (ack, text[:300])
        assert ack["accepted"] >= 0 and ack["duplicates"] >= 0
        sent["examples"] += 1
        sent["events"] += expected
        sent["accepted"] += ack["accepted"]

    post_sync = run_property(loop, post)

    @HTTP_FUZZ
    @given(events=event_lists)
    @example(events=[{"event": "\ud800", "_id": "\udfff", "ts": "\ud83d"}])
    @example(events=[{"event": "open\x00", "_id": "a\x00b", "msg": {"email": "\x00"}}])
    @example(events=[{"type": []}, {"type": {}}, {"event": None, "type": [1]}])
    @example(events=[{"event": "inbound", "msg": {"raw_msg": "\ud800"}}])
    @example(events=[{"event": "open", "ts": 1e308, "_id": "x" * 500}])
    @example(events=[{"event": "click", "url": ["x"], "ip": {"a": 1}, "msg": "x"}])
    @example(events=[{"type": "blacklist", "action": "add", "reject": {"email": "\x00\ud800"}}])
    def authentic_lists(events: list[Any]) -> None:
        post_sync(_json_text(events), len(events))

    @settings(HTTP_FUZZ, max_examples=50)
    @given(text=json_text_with_surrogates)
    @example(text='[{"event":"inbound","msg":{"raw_msg":"\\ud800"}}]')
    @example(text='[{"event":"open","_id":"\\udc80","msg":{"email":"\\u0000"}}]')
    def hand_built_json(text: str) -> None:
        post_sync(text, len(json.loads(text)))

    await run_in_thread(authentic_lists)
    await run_in_thread(hand_built_json)
    assert sent["examples"] >= 150
    assert sent["accepted"] > 0
    assert await _stored(app) == sent["accepted"]
    # Everything accepted settles, and nothing needed a retry to get there.
    await process_everything(app, sent["accepted"])
    problems = await unexpected_outcomes(app)
    assert problems == [], "\n".join(map(repr, problems))


SURROGATE_EVENTS = [
    '[{"event":"inbound","msg":{"raw_msg":"Message-ID: <s@x>\\r\\n\\r\\n\\ud800"}}]',
    '[{"event":"open","_id":"s1","ts":1,"msg":{"subject":"\\udfff","email":"a@b"}}]',
    '[{"type":"blacklist","action":"add","reject":{"email":"\\ud83d@x"}}]',
]


NUL_EVENTS = [
    '[{"event":"open","_id":"n1","ts":1,"msg":{"state":"sent\\u0000","email":"a@b"}}]',
    '[{"event":"click","_id":"n2","ts":1,"url":"https://x/\\u0000","msg":{}}]',
    '[{"type":"whitelist","action":"add","entry":{"email":"a\\u0000@x"}}]',
]


@pytest.mark.parametrize(
    "text",
    [*SURROGATE_EVENTS, *NUL_EVENTS],
    ids=[
        "surrogate-inbound",
        "surrogate-message",
        "surrogate-sync",
        "nul-state",
        "nul-url",
        "nul-sync",
    ],
)
async def test_accepted_event_with_a_lone_surrogate_or_a_nul_is_processed(
    app: FastAPI, client: httpx.AsyncClient, text: str
) -> None:
    body, headers = signed_form(text)
    response = await client.post(WEBHOOK_PATH, content=body, headers=headers)
    assert response.json() == {"accepted": 1, "duplicates": 0}
    await process_everything(app, 1)
    assert await unexpected_outcomes(app) == []


@pytest.mark.parametrize("depth", [100, 300, 1025, 5000, 100_000])
async def test_deeply_nested_authentic_batches_are_400_or_200_never_500(
    client: httpx.AsyncClient, depth: int
) -> None:
    body, headers = signed_form("[" * depth + "]" * depth)
    response = await client.post(WEBHOOK_PATH, content=body, headers=headers)
    assert response.status_code in (200, 400), (depth, response.status_code, response.text)
    if response.status_code == 400:
        assert response.json()["error"]["code"] == "malformed_payload"


@pytest.mark.parametrize("depth", [1000, 1023])
async def test_nesting_orjson_reads_but_cannot_write_is_not_a_500(
    client: httpx.AsyncClient, depth: int
) -> None:
    body, headers = signed_form("[" * depth + "]" * depth)
    response = await client.post(WEBHOOK_PATH, content=body, headers=headers)
    assert response.status_code in (200, 400), (depth, response.status_code)


content_types = st.sampled_from(
    [
        None,
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "multipart/form-data; boundary=xyz",
        "application/json",
        "text/plain; charset=idna",
        "application/x-www-form-urlencoded; charset=\udcff".encode(
            "utf-8", "surrogateescape"
        ).decode("latin-1"),
    ]
)
signatures = st.none() | st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40
)


async def test_unsigned_or_garbage_bodies_are_401_or_400_and_store_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    loop = asyncio.get_running_loop()
    seen: dict[int, int] = {}

    async def post(body: bytes, content_type: str | None, signature: str | None) -> None:
        # Bytes, as a client may send them: header values are latin-1 on the wire.
        headers: dict[str, bytes] = {}
        if content_type is not None:
            headers["Content-Type"] = content_type.encode("latin-1")
        if signature is not None:
            headers["X-Mandrill-Signature"] = signature.encode("latin-1")
        response = await client.post(WEBHOOK_PATH, content=body, headers=headers)
        assert response.status_code in (400, 401), (response.status_code, response.text[:300])
        error = response.json()["error"]
        assert set(error) == {"code", "message", "details", "request_id"}
        assert error["code"] in ("invalid_signature", "malformed_payload", "bad_request")
        seen[response.status_code] = seen.get(response.status_code, 0) + 1

    post_sync = run_property(loop, post)
    events_field = st.builds(
        lambda value: b"mandrill_events=" + value, st.binary(max_size=200) | st.just(b"%5B%5D")
    )

    @HTTP_FUZZ
    @given(
        body=st.binary(max_size=500) | events_field,
        content_type=content_types,
        signature=signatures,
    )
    @example(body=b"mandrill_events=%5B%5D", content_type=None, signature="")
    @example(
        body=b'--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\n',
        content_type="multipart/form-data; boundary=xyz",
        signature="x",
    )
    @example(body=b"&" * 150, content_type="application/x-www-form-urlencoded", signature="x")
    @example(body=b"mandrill_events=%5B%5D", content_type=None, signature="\xff" * 28)
    def garbage(body: bytes, content_type: str | None, signature: str | None) -> None:
        post_sync(body, content_type, signature)

    await run_in_thread(garbage)
    assert sum(seen.values()) >= 150
    assert seen.get(401, 0) > 0
    assert await _stored(app) == 0


async def test_signed_with_a_rotated_out_key_or_another_url_is_401(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    events = orjson.dumps([{"event": "open", "_id": "a", "ts": 1}]).decode()
    params = [("mandrill_events", events)]
    for key, url in [
        ("another-key", WEBHOOK_URL),
        (WEBHOOK_KEY, WEBHOOK_URL + "/"),
        (WEBHOOK_KEY, WEBHOOK_URL.replace("https", "http")),
        ("test-webhook", WEBHOOK_URL),  # the setup-check key signs only the empty batch
    ]:
        body, headers = signed_form(events)
        headers["X-Mandrill-Signature"] = mandrill_signature(key.encode(), url, params)
        response = await client.post(WEBHOOK_PATH, content=body, headers=headers)
        assert response.status_code == 401, (key, url)
    assert await _stored(app) == 0
