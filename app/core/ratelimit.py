"""slowapi limiter: in-memory by default, Redis (or any `limits` storage URL) as an option."""

from __future__ import annotations

from slowapi import Limiter
from slowapi.errors import RateLimitExceeded
from slowapi.util import get_remote_address
from starlette.requests import Request
from starlette.responses import Response

from app.core.config import Settings
from app.core.errors import error_response


def build_limiter(settings: Settings) -> Limiter:
    return Limiter(
        key_func=get_remote_address,
        storage_uri=settings.rate_limit_storage_url,
        headers_enabled=False,
    )


def rate_limit_exceeded(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RateLimitExceeded)
    retry_after = 60
    limit = getattr(exc, "limit", None)
    if limit is not None:
        retry_after = int(limit.limit.get_expiry())
    return error_response(
        429,
        "rate_limited",
        f"Too many requests: the limit is {exc.detail}. Retry after {retry_after} seconds.",
        headers={"Retry-After": str(retry_after)},
    )
