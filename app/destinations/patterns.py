"""Recipient patterns: which envelope recipients a destination receives mail for.

`*` takes everything; otherwise `local@domain`, where either side may be `*` (any), the
domain may start with `*.` (any subdomain), and the local part may hold one `{tag}` that
captures what stands there (`agent+{tag}@agents.example.com` matches
`agent+sales@agents.example.com` with tag `sales`). Matching ignores case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

TAG = "{tag}"
_ALLOWED = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.@]+")


class InvalidPattern(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Match:
    tag: str | None


def validate_pattern(pattern: str) -> str:
    """The pattern, normalised (stripped, lower-cased), or `InvalidPattern` saying why."""
    text = pattern.strip().lower()
    if text == "*":
        return text
    if not text or not _ALLOWED.fullmatch(text):
        raise InvalidPattern("use `*`, or an address pattern such as support@*, *@example.com")
    local, at, domain = text.partition("@")
    if not at or "@" in domain or not local or not domain:
        raise InvalidPattern("an address pattern has one `@` between a local part and a domain")
    if text.count(TAG) > 1 or TAG in domain:
        raise InvalidPattern("`{tag}` may appear once, in the local part")
    if "{" in local.replace(TAG, "") or "}" in local.replace(TAG, ""):
        raise InvalidPattern("braces are only allowed as `{tag}`")
    if "*" in domain and not (domain == "*" or (domain.startswith("*.") and "*" not in domain[2:])):
        raise InvalidPattern("the domain is `*`, `*.example.com` or a name")
    if "*" in local and local != "*":
        raise InvalidPattern("the local part is `*` or a name (with at most one `{tag}`)")
    return text


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    if pattern == "*":
        return re.compile(r".*", re.DOTALL)
    local, _, domain = pattern.partition("@")
    if local == "*":
        local_re = r"[^@]+"
    else:
        before, tag, after = local.partition(TAG)
        local_re = re.escape(before) + (r"(?P<tag>[^@]+)" if tag else "") + re.escape(after)
    if domain == "*":
        domain_re = r"[^@]+"
    elif domain.startswith("*."):
        domain_re = r"(?:[^@]+\.)?" + re.escape(domain[2:])
    else:
        domain_re = re.escape(domain)
    return re.compile(f"{local_re}@{domain_re}")


def match_recipient(pattern: str, recipient: str | None) -> Match | None:
    """A `Match` (with the captured tag) when `recipient` fits `pattern`, else None."""
    if pattern == "*":
        return Match(tag=None)
    if not recipient:
        return None
    found = _compile(pattern).fullmatch(recipient.strip().lower())
    if found is None:
        return None
    return Match(tag=found.groupdict().get("tag"))
