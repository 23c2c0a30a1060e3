"""Query parameter types and documented error responses shared by the API's routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

from app.core.errors import ERROR_RESPONSES, ErrorEnvelope
from app.core.times import as_utc


def error_responses(
    *statuses: int, extra: dict[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """The envelope schema for `statuses` (descriptions from `ERROR_RESPONSES`) and for the
    `extra` statuses with the given descriptions (which also override the standard ones)."""
    responses: dict[int, dict[str, Any]] = {s: ERROR_RESPONSES[s] for s in statuses}
    for status, description in (extra or {}).items():
        responses[status] = {"model": ErrorEnvelope, "description": description}
    return {status: responses[status] for status in sorted(responses)}


def _iso_text(value: object) -> object:
    # pydantic would read "1700000000" as Unix seconds; the API documents ISO 8601 date-times
    # only, and a number here is more likely a mistake than a time.
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value
        raise ValueError("must be an ISO 8601 date-time, like 2026-11-21T10:15:00Z")
    return value


# A time in a query string; without a zone it is taken as UTC, and one UTC cannot hold is a 422.
QueryTime = Annotated[datetime, BeforeValidator(_iso_text), AfterValidator(as_utc)]


def _without_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL: refuse it here (422) rather than fail in the driver (500).
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# Text from a query string that is compared with database columns.
QueryText = Annotated[str, AfterValidator(_without_nul)]

# Every API route is served under this prefix; paths are built from it (or `url_for`).
API_PREFIX = "/api/v1"
