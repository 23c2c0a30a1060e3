"""Times read from a request (query parameters, cursors), always turned into aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime

OUT_OF_RANGE = "is outside the range of times UTC can hold (years 1 to 9999 once converted to UTC)"


def as_utc(value: datetime) -> datetime:
    """`value` in UTC; a naive value is taken as UTC.

    A valid ISO 8601 time can fall off the calendar once converted (`9999-12-31T23:59:59-14:00`
    is in year 10000 in UTC): that is a ValueError, which validation reports as bad input, not
    the OverflowError the conversion raises (a 500).
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"the time {OUT_OF_RANGE}") from None
