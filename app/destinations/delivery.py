"""One HTTP attempt: sign, POST, read the start of the answer, classify the outcome."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import aiohttp

from app.destinations.errors import DestinationRefused
from app.destinations.signing import sign
from app.destinations.ssrf import GuardedResolver, check_destination_url

RESPONSE_KEPT_BYTES = 1024
USER_AGENT = "Kave-Webhooks/1.0"
MAX_ERROR_CHARS = 500


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    GONE = "gone"  # 410: the consumer asked never to be sent to again
    ABANDONED = "abandoned"  # nothing to send (the email was deleted): not the consumer's fault


@dataclass(frozen=True, slots=True)
class AttemptResult:
    outcome: Outcome
    status_code: int | None
    latency_ms: int
    error: str | None
    response_body: str | None


def http_session(
    *, timeout_seconds: float, allow_private: bool, limit: int = 100
) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(allow_private=allow_private), limit=limit, limit_per_host=0
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_seconds),
        headers={"User-Agent": USER_AGENT},
        # Cookies from one consumer must never ride along to another.
        cookie_jar=aiohttp.DummyCookieJar(),
    )


async def post_signed(
    http: aiohttp.ClientSession,
    *,
    url: str,
    secrets: list[str],
    msg_id: str,
    now: datetime,
    body: str,
    allow_private: bool,
) -> AttemptResult:
    started = time.perf_counter()

    def elapsed() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        # Again at every send: what the name resolves to may have changed since creation.
        await check_destination_url(url, allow_private=allow_private)
    except DestinationRefused as exc:
        return AttemptResult(Outcome.RETRY, None, elapsed(), f"refused: {exc.message}", None)
    headers = {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": sign(secrets, msg_id=msg_id, timestamp=now, body=body),
    }
    try:
        # No redirects: a 3xx could point anywhere, including where the guard would refuse.
        async with http.post(
            url, data=body.encode(), headers=headers, allow_redirects=False
        ) as response:
            start = await response.content.read(RESPONSE_KEPT_BYTES)
            status = response.status
    except TimeoutError:
        return AttemptResult(Outcome.RETRY, None, elapsed(), "timeout", None)
    except (aiohttp.ClientError, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        return AttemptResult(Outcome.RETRY, None, elapsed(), error, None)
    text = start.decode("utf-8", "replace")
    if 200 <= status < 300:
        return AttemptResult(Outcome.DELIVERED, status, elapsed(), None, text)
    outcome = Outcome.GONE if status == 410 else Outcome.RETRY
    return AttemptResult(outcome, status, elapsed(), f"HTTP {status}", text)
