"""`X-Mandrill-Signature`: HMAC-SHA1 over the configured URL and the form, base64."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence

from app.core.config import SETUP_CHECK_WEBHOOK_KEY
from app.mandrill.errors import InvalidSignature
from app.mandrill.form import _EVENTS_FIELD, FormParams

# Signs only the empty batch of Mailchimp's URL check; refused as a configured key (config).
SETUP_CHECK_KEY = SETUP_CHECK_WEBHOOK_KEY.encode()


_EMPTY_BATCH = [(_EVENTS_FIELD, b"[]")]


def _utf8(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")


def mandrill_signature(
    key: bytes, url: str, params: Iterable[tuple[str | bytes, str | bytes]]
) -> str:
    """base64(HMAC-SHA1(key, URL + each name and value, sorted by name))."""
    pairs = sorted(((_utf8(n), _utf8(v)) for n, v in params), key=lambda p: p[0])
    mac = hmac.new(key, url.encode("utf-8"), hashlib.sha1)
    for name, value in pairs:
        mac.update(name)
        mac.update(value)
    return base64.b64encode(mac.digest()).decode("ascii")


def _matches(provided: bytes, key: bytes, url: str, params: FormParams) -> bool:
    return hmac.compare_digest(provided, mandrill_signature(key, url, params).encode("ascii"))


def provided_signature(signature: str | None) -> bytes:
    """The X-Mandrill-Signature header as compared (raises when it is missing)."""
    if not signature:
        raise InvalidSignature("The X-Mandrill-Signature header is missing.")
    return signature.strip().encode("utf-8", "replace")


def verify_mandrill_signature(
    *, signature: str | None, url: str, params: FormParams, keys: Sequence[bytes]
) -> bool:
    """True for an authentic batch, False for Mandrill's setup check; raises when neither.

    The setup check is `mandrill_events=[]` signed with the literal key `test-webhook`: it is
    accepted (nothing is stored) and that key authenticates nothing else.
    """
    provided = provided_signature(signature)
    if any([_matches(provided, key, url, params) for key in keys]):  # noqa: C419 (check every key)
        return True
    if params == _EMPTY_BATCH and _matches(provided, SETUP_CHECK_KEY, url, params):
        return False
    raise InvalidSignature()
