"""Expiring signed download links: an attachment or a raw message without a bearer token.

Notifications carry them so a consumer can fetch the bytes it was told about without holding
Kave credentials. The link is `.../links/{kind}/{id}?expires=<unix>&signature=<hex>`, an
HMAC-SHA256 over kind, id and expiry under a key derived from SECRET_KEY; changing any part of
it, or waiting past `expires`, makes it worthless. The query string is never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import SecretStr
from starlette.responses import StreamingResponse

from app.core.errors import AppError
from app.core.params import API_PREFIX, error_responses
from app.deps import SessionDep, SettingsDep, StorageDep
from app.emails.downloads import (
    BINARY_CONTENT,
    find_attachment,
    stream_attachment,
    stream_raw_message,
)

LinkKind = Literal["attachments", "raw"]
router = APIRouter(prefix="/links", tags=["links"])


class LinkInvalid(AppError):
    status_code = 403
    code = "link_invalid"
    message = "The download link is not valid or has expired; ask for a new notification."


def _signature(secret_key: SecretStr, kind: str, target: uuid.UUID, expires: int) -> str:
    key = hmac.new(secret_key.get_secret_value().encode(), b"kave-links-v1", "sha256").digest()
    return hmac.new(key, f"{kind}:{target}:{expires}".encode(), hashlib.sha256).hexdigest()


def signed_link(
    *, base_url: str, secret_key: SecretStr, kind: LinkKind, target: uuid.UUID, ttl_seconds: int
) -> tuple[str, datetime]:
    expires = int(time.time()) + ttl_seconds
    signature = _signature(secret_key, kind, target, expires)
    url = f"{base_url}{API_PREFIX}/links/{kind}/{target}?expires={expires}&signature={signature}"
    return url, datetime.fromtimestamp(expires, UTC)


def _check(secret_key: SecretStr, kind: str, target: uuid.UUID, expires: int, sig: str) -> None:
    expected = _signature(secret_key, kind, target, expires)
    if not hmac.compare_digest(expected, sig) or expires < time.time():
        raise LinkInvalid()


Expires = Annotated[int, Query(ge=0, lt=2**40)]
Signature = Annotated[str, Query(pattern="^[0-9a-f]{64}$")]
LINK_RESPONSES = {
    200: {"content": {"*/*": BINARY_CONTENT}, "description": "Bytes"},
    **error_responses(404, 422, 500, extra={403: "`link_invalid`: wrong signature or expired"}),
}


@router.get(
    "/attachments/{attachment_id}",
    response_class=StreamingResponse,
    responses=LINK_RESPONSES,
    summary="Download an attachment through a signed link (no token)",
)
async def linked_attachment(
    attachment_id: uuid.UUID,
    expires: Expires,
    signature: Signature,
    session: SessionDep,
    store: StorageDep,
    settings: SettingsDep,
) -> StreamingResponse:
    _check(settings.secret_key, "attachments", attachment_id, expires, signature)
    return await stream_attachment(store, await find_attachment(session, attachment_id))


@router.get(
    "/raw/{email_id}",
    response_class=StreamingResponse,
    responses=LINK_RESPONSES,
    summary="Download an email's raw message through a signed link (no token)",
)
async def linked_raw_message(
    email_id: uuid.UUID,
    expires: Expires,
    signature: Signature,
    session: SessionDep,
    store: StorageDep,
    settings: SettingsDep,
) -> StreamingResponse:
    _check(settings.secret_key, "raw", email_id, expires, signature)
    return await stream_raw_message(session, store, email_id)
