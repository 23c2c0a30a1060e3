"""Background handlers for Mandrill events: inbound mail, message events and sync events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson

from app.deliveries.models import Delivery
from app.emails.agent_fields import apply_agent_fields, attachment_rows
from app.emails.models import Email
from app.emails.threads import own_key
from app.mail.agent_fields import agent_fields
from app.mail.errors import UnparseableMessage
from app.mail.parsed import ParsedEmail
from app.mail.parser import parse_inbound
from app.mail.text import clean_json, clean_text
from app.mandrill.classify import MESSAGE_EVENTS, mandrill_message_id
from app.mandrill.publish import published
from app.processing.context import ProcessingContext
from app.processing.inbox import ClaimedEvent
from app.processing.ingest import offload_if_large
from app.processing.models import EventKind
from app.processing.outcomes import EventIgnored, PermanentFailure, Records
from app.storage.base import content_key


def _load(event: ClaimedEvent) -> dict[str, Any]:
    payload = event.take_payload()
    if payload is None:
        raise PermanentFailure("the payload was purged; the event cannot be processed again")
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        # What the webhook accepted through the stdlib fallback (lone surrogates, huge numbers).
        data = json.loads(payload)
    if not isinstance(data, dict):
        raise PermanentFailure("the event is not a JSON object")
    return data


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _text(value: Any, limit: int | None = None) -> str | None:
    if value is None:
        return None
    text = clean_text(value if isinstance(value, str) else str(value))
    return text[:limit] if limit else text


def _hash_parts(parsed: ParsedEmail) -> tuple[tuple[str, str] | None, list[tuple[str, str]]]:
    raw = content_key(parsed.raw) if parsed.raw else None
    return raw, [content_key(att.content) for att in parsed.attachments]


async def _store_blobs(
    ctx: ProcessingContext, parsed: ParsedEmail, size: int
) -> tuple[tuple[str, str] | None, list[tuple[str, str]]]:
    raw_key, attachment_keys = await offload_if_large(size, _hash_parts, parsed)
    # Keyed by content hash: the same bytes twice in one message are uploaded once.
    uploads: dict[str, tuple[str, bytes, str]] = {}
    if raw_key and parsed.raw:
        uploads[raw_key[1]] = (raw_key[1], parsed.raw, "message/rfc822")
    for (_, key), att in zip(attachment_keys, parsed.attachments, strict=True):
        uploads.setdefault(key, (key, att.content, att.content_type))
    # Made durable by the engine's one flush for the batch, before the commit that records it.
    await ctx.blob_store.put_many(list(uploads.values()), durable=False)
    return raw_key, attachment_keys


async def process_inbound(ctx: ProcessingContext, event: ClaimedEvent) -> Records:
    size = event.payload_size
    data = await offload_if_large(size, _load, event)
    # Handed over, not shared: the parser drops the raw text once it has the bytes.
    try:
        parsed = await offload_if_large(size, parse_inbound, data.pop("msg", None), consume=True)
    except UnparseableMessage as exc:
        raise PermanentFailure(str(exc)) from exc
    del data
    raw_key, attachment_keys = await _store_blobs(ctx, parsed, size)

    email = Email(
        event_id=event.id,
        message_id=parsed.message_id,
        raw_sha256=raw_key[0] if raw_key else None,
        raw_blob_key=raw_key[1] if raw_key else None,
        raw_size=len(parsed.raw or b""),
        subject=parsed.subject,
        from_address=parsed.from_address,
        from_name=parsed.from_name,
        to=[{"email": a.email, "name": a.name} for a in parsed.to],
        cc=[{"email": a.email, "name": a.name} for a in parsed.cc],
        reply_to=[{"email": a.email, "name": a.name} for a in parsed.reply_to],
        recipients_text=" ".join(a.email.lower() for a in [*parsed.to, *parsed.cc]),
        envelope_recipient=parsed.envelope_recipient,
        sent_at=parsed.sent_at,
        in_reply_to=parsed.in_reply_to,
        references=parsed.references,
        headers=parsed.headers,
        text_body=parsed.text_body,
        html_body=parsed.html_body,
        spam_score=parsed.spam_score,
        spam_rules=parsed.spam_rules,
        spf_result=parsed.spf_result,
        spf_detail=parsed.spf_detail,
        dkim_signed=parsed.dkim_signed,
        dkim_valid=parsed.dkim_valid,
        tags=parsed.tags,
        received_at=event.received_at,
    )
    email.attachments = attachment_rows(parsed.attachments, attachment_keys)
    fields = await offload_if_large(size, agent_fields, parsed)
    # The thread itself is assigned when the batch is stored (app/mandrill/publish.py): the
    # email reads it through its own key, so a later merge cannot miss it.
    apply_agent_fields(email, fields, thread_key=own_key(parsed.message_id, event.id))
    return published(email)


def _delivery(event: ClaimedEvent, data: dict[str, Any]) -> Delivery:
    if event.kind == EventKind.SYNC:
        entry = data.get("reject") or data.get("entry") or {}
        entry = entry if isinstance(entry, dict) else {}
        return Delivery(
            event_id=event.id,
            kind=EventKind.SYNC.value,
            event_type=event.event_type,
            recipient=_text(entry.get("email"), 998),
            occurred_at=_timestamp(data.get("ts")),
            state=_text(data.get("action"), 64),
            details=clean_json(data),
        )
    msg = data.get("msg") if isinstance(data.get("msg"), dict) else {}
    assert isinstance(msg, dict)
    return Delivery(
        event_id=event.id,
        kind=EventKind.MESSAGE.value,
        event_type=event.event_type,
        message_id=mandrill_message_id(data),
        recipient=_text(msg.get("email"), 998),
        occurred_at=_timestamp(data.get("ts")),
        state=_text(msg.get("state"), 64),
        subject=_text(msg.get("subject")),
        url=_text(data.get("url")),
        ip=_text(data.get("ip"), 64),
        details=clean_json(data),
    )


async def process_delivery(ctx: ProcessingContext, event: ClaimedEvent) -> Records:
    if event.kind == EventKind.MESSAGE and event.event_type not in MESSAGE_EVENTS:
        raise EventIgnored(f"Kave does not record Mandrill '{event.event_type}' events")
    data = _load(event)
    return Records(event.id, Delivery, [_delivery(event, data)])


async def reject_invalid(ctx: ProcessingContext, event: ClaimedEvent) -> Records:
    raise PermanentFailure(
        "not a recognisable Mandrill event (expected an object with 'event', or a sync event "
        "with 'type' blacklist/whitelist, and an inbound event needs a 'msg' object)"
    )
