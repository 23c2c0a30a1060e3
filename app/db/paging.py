"""Opaque keyset cursors over `(received_at, id)`, newest first.

A cursor is the position of the last row of a page: URL-safe base64 (unpadded) of the JSON
`[collection, received_at ISO 8601, id]`. Keyset pagination stays correct while rows are
added (nothing is skipped or repeated, unlike OFFSET) and costs one index range scan per page.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

import orjson

from app.core.errors import BadRequest
from app.core.times import as_utc

MAX_CURSOR_CHARS = 256
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Position:
    received_at: datetime
    id: uuid.UUID


def encode_cursor(collection: str, position: Position) -> str:
    raw = orjson.dumps([collection, position.received_at.isoformat(), position.id.hex])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(collection: str, cursor: str) -> Position:
    """Parse a cursor made by `encode_cursor` for the same collection, else `InvalidCursor`."""
    if len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidCursor()
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        name, stamp, id_hex = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if name != collection or not isinstance(stamp, str) or not isinstance(id_hex, str):
            raise InvalidCursor()
        received_at = datetime.fromisoformat(stamp)
        if received_at.tzinfo is None:
            raise InvalidCursor()
        return Position(as_utc(received_at), uuid.UUID(hex=id_hex))
    except (ValueError, TypeError, UnicodeEncodeError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidCursor() from None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def build_page(
    collection: str, rows: Sequence[T], *, limit: int, position_of: Callable[[T], Position]
) -> Page[T]:
    """`rows` holds up to `limit + 1` rows: the extra one only says that another page exists."""
    items = list(rows[:limit])
    has_more = len(rows) > limit
    next_cursor = encode_cursor(collection, position_of(items[-1])) if has_more else None
    return Page(items=items, next_cursor=next_cursor)


class InvalidCursor(BadRequest):
    code = "invalid_cursor"
    message = "The pagination cursor is not valid; start again without one."
