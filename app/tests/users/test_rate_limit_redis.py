"""The token rate limit on the Redis server of this machine, and with a storage that stalls.

`RATE_LIMIT_STORAGE_URL=redis://127.0.0.1:6379` must start Kave and limit; counts are shared by
every process on the same Redis; a storage that does not answer holds neither the event loop
nor the request for ever (503). Each test counts under a key prefix of its own and deletes it.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.core.ratelimit import RateCounter
from app.main import create_app
from app.tests.fixtures.api import PASSWORD, MakeUser
from app.tests.server_process import ServerProcess
from app.tests.users.test_token_throttle import WRONG, assert_rate_limited, attempt, client_at

REDIS_URL = "redis://127.0.0.1:6379"


def _redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


needs_redis = pytest.mark.skipif(not _redis_reachable(), reason="no Redis at 127.0.0.1:6379")


async def _delete_keys(url: str, pattern: str) -> int:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=pattern)]
        return int(await client.delete(*keys)) if keys else 0
    finally:
        await client.aclose()


@pytest.fixture
async def redis_counter(app: FastAPI) -> AsyncIterator[RateCounter]:
    """The app counting in the real Redis, under a prefix no other test or process uses."""
    prefix = f"kave-test-{uuid.uuid4().hex}"
    counter = RateCounter(REDIS_URL, key_prefix=prefix)
    app.state.rate_counter = counter
    try:
        yield counter
    finally:
        await counter.close()
        await _delete_keys(REDIS_URL, f"{prefix}*")


@needs_redis
async def test_redis_counts_limit_the_token_endpoint(
    redis_counter: RateCounter, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    assert [await attempt(client, user.email) for _ in range(5)] == [401] * 5
    limited = await client.post(
        "/api/v1/auth/token", data={"username": user.email, "password": PASSWORD}
    )
    assert_rate_limited(limited)
    # Concurrent attempts are charged atomically by Redis too.
    codes = await asyncio.gather(*(attempt(client, f"u{i}@example.com") for i in range(4)))
    assert codes == [429] * 4


@needs_redis
async def test_two_processes_on_one_redis_share_the_counts(
    redis_counter: RateCounter, app: FastAPI, settings_for_second_app: FastAPI
) -> None:
    # Another replica of the service: its own app and Redis client, the same keys.
    second = settings_for_second_app
    second.state.rate_counter = RateCounter(REDIS_URL, key_prefix=redis_counter.key_prefix)
    try:
        async with client_at(app, "198.51.100.1") as one, client_at(second, "198.51.100.1") as two:
            assert [await attempt(one, f"a{i}@example.com") for i in range(3)] == [401] * 3
            assert [await attempt(two, f"b{i}@example.com") for i in range(3)] == [401, 401, 429]
    finally:
        await second.state.rate_counter.close()


@pytest.fixture
async def settings_for_second_app(app: FastAPI) -> AsyncIterator[FastAPI]:
    second = create_app(app.state.settings)
    async with second.router.lifespan_context(second):
        yield second


@pytest.fixture
def silent_storage() -> Iterator[str]:
    """A TCP server that accepts connections and never answers: a stalled Redis."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


async def test_a_stalled_storage_holds_neither_the_loop_nor_the_request(
    app: FastAPI, client: httpx.AsyncClient, silent_storage: str
) -> None:
    app.state.rate_counter = RateCounter(silent_storage)
    token = asyncio.create_task(
        client.post("/api/v1/auth/token", data={"username": "x@example.com", "password": WRONG})
    )
    # While the token request waits on the storage, the same loop serves other requests.
    for _ in range(3):
        assert (await client.get("/health/live")).status_code == 200
    assert not token.done()
    refused = await token
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "service_unavailable"
    assert "rate limiter's storage is unreachable" in refused.json()["error"]["message"]
    await app.state.rate_counter.close()


@needs_redis
@pytest.mark.slow
async def test_kave_started_with_a_redis_url_limits(migrated_database: str, tmp_path: Path) -> None:
    # As an operator sets it: the documented URL, a DB of its own so the test's keys are apart.
    db = 1 + uuid.uuid4().int % 15
    url = f"{REDIS_URL}/{db}"
    server = ServerProcess(
        database_url=migrated_database,
        storage_path=tmp_path / "blobs",
        log=tmp_path / "server.log",
        RATE_LIMIT_STORAGE_URL=url,
    )
    try:
        await asyncio.to_thread(server.start)
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            codes = [await attempt(c, f"user{i}-{uuid.uuid4().hex}@example.com") for i in range(6)]
        assert codes == [401] * 5 + [429]
    finally:
        server.stop_quietly()
        assert await _delete_keys(url, "kave-ratelimit*") >= 1  # they were in Redis
