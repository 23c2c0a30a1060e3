"""The text an inbox event keeps, and one canonical spelling of JSON for keys."""

from __future__ import annotations

import json
from typing import Any

import orjson


def dump_json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode("utf-8")
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, ensure_ascii=True)


def canonical_json(value: Any) -> str:
    """One spelling of a JSON value whatever the key order: the same event hashes the same."""
    return json.dumps(value, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
