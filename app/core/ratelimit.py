"""Rate-limit counters: the `limits` library's fixed windows on its asyncio storage.

In memory by default (one process); `RATE_LIMIT_STORAGE_URL=redis://host:6379[/db]` shares the
counts between processes and replicas. Every storage call is a coroutine (redis.asyncio for
Redis), so a check neither holds the event loop nor a thread of the default executor: the
synchronous storage ran in that executor (six threads on two cores), where a stalled Redis
would have stalled file writes and everything else queued behind it.

A storage call that fails or outlasts STORAGE_TIMEOUT_SECONDS raises `ServiceUnavailable`
(503): a limited endpoint refuses rather than going unlimited while the counts are unreachable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import structlog
from limits import RateLimitItem
from limits.aio.storage import Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

from app.core.config import Settings
from app.core.errors import ServiceUnavailable

logger = structlog.get_logger("app.core.ratelimit")

STORAGE_TIMEOUT_SECONDS = 2.0
# Keys in a shared Redis say whose they are.
KEY_PREFIX = "kave-ratelimit"

T = TypeVar("T")


def async_storage_uri(url: str) -> str:
    """`limits`' asyncio form of a storage URL: `redis://...` -> `async+redis://...`."""
    return url if url.startswith("async+") else f"async+{url}"


def _storage(url: str, key_prefix: str) -> Storage:
    scheme = url.removeprefix("async+").split("://", 1)[0]
    if scheme != "memory":  # the Redis ones (RATE_LIMIT_SCHEMES, checked by the settings)
        # limits' default client for Redis is coredis; redis-py (locked) has an asyncio client.
        storage = storage_from_string(
            async_storage_uri(url),
            implementation="redispy",
            key_prefix=key_prefix,
            wrap_exceptions=True,
            socket_connect_timeout=STORAGE_TIMEOUT_SECONDS,
            socket_timeout=STORAGE_TIMEOUT_SECONDS,
        )
    else:
        storage = storage_from_string(async_storage_uri(url), wrap_exceptions=True)
    if not isinstance(storage, Storage):  # an `async+` URL always names an asyncio storage
        raise TypeError(f"{scheme}:// has no asyncio storage")
    return storage


class RateCounter:
    """Hit, test, read and clear fixed-window counts; each call bounded in time."""

    def __init__(self, url: str, *, key_prefix: str = KEY_PREFIX) -> None:
        self.key_prefix = key_prefix
        self.storage = _storage(url, key_prefix)
        self._strategy = FixedWindowRateLimiter(self.storage)

    async def _bounded(self, call: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(STORAGE_TIMEOUT_SECONDS):
                return await call
        except (StorageError, TimeoutError) as exc:
            cause = exc.storage_error if isinstance(exc, StorageError) else exc
            logger.warning("ratelimit.storage_unavailable", exc_type=type(cause).__name__)
            raise ServiceUnavailable(
                "The rate limiter's storage is unreachable; retry later."
            ) from None

    async def hit(self, item: RateLimitItem, *key: str) -> bool:
        """Count one; False when that passed the limit."""
        return await self._bounded(self._strategy.hit(item, *key))

    async def test(self, item: RateLimitItem, *key: str) -> bool:
        """True while the count is under the limit (nothing is counted)."""
        return await self._bounded(self._strategy.test(item, *key))

    async def reset_at(self, item: RateLimitItem, *key: str) -> float:
        """When the current window of `key` ends (epoch seconds)."""
        stats = await self._bounded(self._strategy.get_window_stats(item, *key))
        return float(stats.reset_time)

    async def clear(self, item: RateLimitItem, *key: str) -> None:
        await self._bounded(self._strategy.clear(item, *key))

    async def close(self) -> None:
        """Close the Redis client's connections (the memory storage holds none)."""
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        if client is not None:
            await client.aclose()


def build_rate_counter(settings: Settings) -> RateCounter:
    return RateCounter(settings.rate_limit_storage_url)
