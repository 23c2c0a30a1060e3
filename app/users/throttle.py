"""Rate limit of the token endpoint: per client address and, separately, per username.

slowapi's `@limiter.limit` decorator needs the limiter when the module is imported, but ours is
built per app in `create_app` (and its key function cannot await the form). So the route calls
this after FastAPI has read the form, and it counts hits on the app's limiter storage through
the `limits` strategy slowapi wraps. Both counters are charged on every attempt, so spreading
guesses over many usernames from one address, or over many addresses for one username, is
limited either way.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache

import structlog
from limits import RateLimitItem, parse_many
from slowapi import Limiter
from slowapi.util import get_remote_address
from starlette.requests import Request

from app.core.errors import RateLimited

logger = structlog.get_logger("app.users.throttle")

SCOPE = "auth-token"
MAX_KEY_CHARS = 320


@lru_cache(maxsize=8)
def _limits(rate: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(rate))


def enforce_token_rate_limit(request: Request, *, username: str, rate: str) -> None:
    """Count one token request; raise `RateLimited` (429 + Retry-After) past `rate`."""
    limiter: Limiter = request.app.state.limiter
    if not limiter.enabled:
        return
    keys = {
        "address": get_remote_address(request),
        "username": username.strip().lower()[:MAX_KEY_CHARS],
    }
    strategy = limiter.limiter
    retry_after = 0
    for item in _limits(rate):
        for kind, key in keys.items():
            if not strategy.hit(item, SCOPE, kind, key):
                reset_at, _ = strategy.get_window_stats(item, SCOPE, kind, key)
                retry_after = max(retry_after, math.ceil(reset_at - time.time()), 1)
    if retry_after:
        logger.warning("auth.token.rate_limited", retry_after=retry_after)
        raise RateLimited(
            f"Too many token requests: the limit is {rate}. Retry after {retry_after} seconds.",
            headers={"Retry-After": str(retry_after)},
        )
