"""Rate limit of the token endpoint: per client address, per username, per (username, address).

Counted on the app's rate counter (app/core/ratelimit.py, RATE_LIMIT_STORAGE_URL), in each
window of TOKEN_RATE_LIMIT (every limit of it, e.g. `5/minute;30/hour`, applies):

- **address**: every attempt from the address, whatever the username, is charged before the
  password is checked, so concurrent requests cannot overrun it (a success is not taken back:
  `limits` has no portable decrement, and a known password must not buy more guesses). Past
  the limit: 429. One address can neither guess one password fast nor spread guesses over
  many usernames.
- **username**: failed attempts at the username, from any address. Past the limit the username
  is *guarded*, not locked out: a guess from elsewhere must never keep the owner out, and
  guesses from rotating addresses would otherwise do exactly that. While guarded, an address
  gets its password checked only on its first attempt at this username in the window
  (counted per **(username, address)**, reset by a success); further attempts get 429. So the
  owner, signing in from an address without recent failures for the account, gets in with the
  right password, and a distributed guesser gets one guess per address and window instead of
  the address's whole allowance. We did not choose a growing delay per username: whoever retries
  first when it ends wins the slot, so a guesser can keep the owner waiting indefinitely.

The client address is the ASGI peer. uvicorn replaces it with X-Forwarded-For only when the
peer is in FORWARDED_ALLOW_IPS, which Kave's launchers set to none unless configured.

Every count is an asyncio call on that storage (a round trip with Redis): nothing here blocks
the event loop or takes a thread; an unreachable storage makes the attempt a 503.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache

import structlog
from limits import RateLimitItem, parse_many
from starlette.requests import Request

from app.core.errors import RateLimited
from app.core.ratelimit import RateCounter

logger = structlog.get_logger("app.users.throttle")

SCOPE = "auth-token"
MAX_KEY_CHARS = 320


@lru_cache(maxsize=8)
def _limits(rate: str) -> tuple[tuple[RateLimitItem, RateLimitItem], ...]:
    """Each limit of `rate`, paired with a limit of 1 in the same window (the first attempt of
    an address at a guarded username)."""
    return tuple((item, type(item)(1, item.multiples, item.namespace)) for item in parse_many(rate))


@dataclass(frozen=True, slots=True)
class TokenThrottle:
    counter: RateCounter
    rate: str
    address: str
    username: str

    @classmethod
    def of(cls, request: Request, *, username: str, rate: str) -> TokenThrottle:
        return cls(
            counter=request.app.state.rate_counter,
            rate=rate,
            address=_client_address(request),
            username=username.strip().lower()[:MAX_KEY_CHARS],
        )

    async def _seconds_to(self, item: RateLimitItem, *key: str) -> float:
        return await self.counter.reset_at(item, SCOPE, *key) - time.time()

    async def admit(self) -> None:
        """Charge this attempt; raise `RateLimited` when it must not be checked."""
        address = ("address", self.address)
        pair = ("pair", self.username, self.address)
        username = ("username", self.username)
        waits: list[float] = []
        reasons: set[str] = set()
        for item, first in _limits(self.rate):
            if not await self.counter.hit(item, SCOPE, *address):
                waits.append(await self._seconds_to(item, *address))
                reasons.add("address")
            is_first = await self.counter.hit(first, SCOPE, *pair)
            if not is_first and not await self.counter.test(item, SCOPE, *username):
                # Free again when the guard ends or this address's window at it does.
                guard_ends = await self._seconds_to(item, *username)
                waits.append(min(guard_ends, await self._seconds_to(first, *pair)))
                reasons.add("username")
        if waits:
            retry_after = max(1, *(math.ceil(wait) for wait in waits))
            logger.warning(
                "auth.token.rate_limited", retry_after=retry_after, reasons=sorted(reasons)
            )
            raise RateLimited(
                f"Too many token requests: the limit is {self.rate}. "
                f"Retry after {retry_after} seconds.",
                headers={"Retry-After": str(retry_after)},
            )

    async def record(self, *, success: bool) -> None:
        for item, first in _limits(self.rate):
            if success:
                # The address is not forgiven (a known password must not buy more guesses
                # elsewhere); only its failures at this username are.
                await self.counter.clear(first, SCOPE, "pair", self.username, self.address)
            else:
                await self.counter.hit(item, SCOPE, "username", self.username)


def _client_address(request: Request) -> str:
    # The ASGI peer, which uvicorn replaces with X-Forwarded-For only from FORWARDED_ALLOW_IPS.
    return request.client.host if request.client and request.client.host else "127.0.0.1"
