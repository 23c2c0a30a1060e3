"""PHP-style nested form keys (`data[merges][GROUPINGS][0][groups]`), as Mailchimp posts them.

The rules, chosen to match what PHP's `$_POST` gives the PHP code Mailchimp's docs assume, and
kept small enough to state here:

- `a[b][c]=v` nests dicts: `{"a": {"b": {"c": "v"}}}`. Every leaf value stays a string.
- `a[]=v` appends: the new key is one past the largest integer key already there, else 0.
- A dict whose keys are exactly `"0"` .. `"n-1"` (all of them, in any order) becomes a list in
  index order, so `GROUPINGS[0][id]`, `GROUPINGS[1][id]` read as a list. Any other numeric-looking
  key stays a string key of a dict (`{"1": ...}` alone is a dict, not a list with a hole).
  "Integer" means canonical ASCII digits (`0`, `12`; not `01`, `-1`, `+1`).
- A repeated key, or a key that is both a value and a container, follows PHP: the last one wins.
- A key that is not `name[seg][seg]...` (unbalanced or nested brackets, text after a `]`, an empty
  name, deeper than `MAX_DEPTH`) is kept as a literal top-level key with its value. Unlike PHP,
  `.` and spaces in names are left alone.

`parse_php_form` never raises, whatever the pairs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MAX_DEPTH = 32

_WELL_FORMED = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
_INDEX = re.compile(r"0|[1-9][0-9]{0,17}")


def split_key(key: str) -> list[str | None] | None:
    """`a[b][]` -> `["a", "b", None]` (None appends); None when the key is not well formed."""
    match = _WELL_FORMED.fullmatch(key)
    if match is None:
        return None
    segments: list[str | None] = [match.group(1)]
    segments.extend(seg or None for seg in _SEGMENT.findall(match.group(2)))
    if len(segments) > MAX_DEPTH + 1:
        return None
    return segments


def _is_index(key: str) -> bool:
    return _INDEX.fullmatch(key) is not None


def _next_index(node: dict[str, Any]) -> str:
    indexes = [int(key) for key in node if _is_index(key)]
    return str(max(indexes) + 1) if indexes else "0"


def _listify(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    converted = {key: _listify(child) for key, child in value.items()}
    if converted and all(_is_index(key) for key in converted):
        indexes = sorted(int(key) for key in converted)
        if indexes == list(range(len(indexes))):
            return [converted[str(i)] for i in indexes]
    return converted


def parse_php_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in pairs:
        path = split_key(key)
        if path is None:
            root[key] = value
            continue
        node = root
        for segment in path[:-1]:
            name = _next_index(node) if segment is None else segment
            child = node.get(name)
            if not isinstance(child, dict):
                child = {}
                node[name] = child
            node = child
        last = path[-1]
        node[_next_index(node) if last is None else last] = value
    return {key: _listify(child) for key, child in root.items()}
