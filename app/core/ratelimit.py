"""slowapi limiter: in-memory by default, Redis (or any `limits` storage URL) as an option."""

from __future__ import annotations

from slowapi import Limiter
from slowapi.util import get_remote_address

from app.core.config import Settings


def build_limiter(settings: Settings) -> Limiter:
    return Limiter(
        key_func=get_remote_address,
        storage_uri=settings.rate_limit_storage_url,
        headers_enabled=False,
    )
