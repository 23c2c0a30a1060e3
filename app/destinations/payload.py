"""The body of a notification: `{"type", "timestamp", "data"}`.

`data` of `email.received` is the email exactly as `GET /api/v1/emails/{id}` shows it (the
same schema, so a field added there is sent here too), with the HTML capped in size, the
plus-address tag, and expiring signed links for each attachment and the raw message: the
consumer fetches the bytes without Kave credentials. Built at send time, so a retry hours
later carries links that still work.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from app.core.config import Settings
from app.emails.links import signed_link
from app.emails.models import Attachment, Email
from app.emails.schemas import EmailDetail


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _capped_html(html: str | None, limit: int) -> tuple[str | None, bool]:
    if html is None:
        return None, False
    encoded = html.encode("utf-8")
    if len(encoded) <= limit:
        return html, False
    return encoded[:limit].decode("utf-8", "ignore"), True


def email_data(
    settings: Settings,
    email: Email,
    attachments: Sequence[Attachment],
    *,
    tag: str | None,
    thread_id: uuid.UUID | None,
) -> dict[str, Any]:
    data = EmailDetail.of(email, list(attachments), thread_id).model_dump(
        mode="json", by_alias=True
    )
    data["html_body"], data["html_truncated"] = _capped_html(
        email.html_body, settings.notification_html_max_bytes
    )
    data["tag"] = tag
    link = {
        "base_url": settings.public_base_url,
        "secret_key": settings.secret_key,
        "ttl_seconds": settings.notification_link_ttl_seconds,
    }
    for item, attachment in zip(data["attachments"], attachments, strict=True):
        url, expires = signed_link(kind="attachments", target=attachment.id, **link)  # type: ignore[arg-type]
        item["name"] = attachment.filename
        item["type"] = attachment.content_type
        item["download_url"] = url
        item["download_expires_at"] = _iso(expires)
    if email.raw_blob_key is not None:
        url, expires = signed_link(kind="raw", target=email.id, **link)  # type: ignore[arg-type]
        data["raw_url"], data["raw_expires_at"] = url, _iso(expires)
    else:
        data["raw_url"], data["raw_expires_at"] = None, None
    return data


def envelope(kind: str, data: dict[str, Any], *, now: datetime) -> str:
    return orjson.dumps({"type": kind, "timestamp": _iso(now), "data": data}).decode()
