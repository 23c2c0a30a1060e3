"""Writing the agent fields (reply text, thread, category, sender trust) and the attachment
rows, with the parent links of files found inside forwarded messages, onto an email.

Shared by processing (app/mandrill/tasks.py) and the recompute command (app/cli/agent_fields.py),
so that both write exactly the same thing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from app.emails.models import Attachment, Email
from app.mail.agent_fields import AgentFields
from app.mail.parsed import ParsedAttachment
from app.mail.text import bounded, clean_json

_SOURCE_FROM_CHARS = 998


def apply_agent_fields(email: Email, fields: AgentFields, *, thread_key: str) -> None:
    email.reply_text = fields.reply_text
    email.thread_key = thread_key
    found = fields.classification
    email.category = found.category.value
    email.bounce_recipient = found.bounce_recipient
    email.bounce_status = found.bounce_status
    email.bounce_action = found.bounce_action
    email.bounce_diagnostic = found.bounce_diagnostic
    email.sender_authenticated = fields.sender.authenticated
    email.sender_auth_reason = fields.sender.reason
    email.dmarc_result = fields.sender.dmarc
    email.authentication_results = clean_json(fields.sender.results) or None


def attachment_rows(
    parsed: Sequence[ParsedAttachment], keys: Sequence[tuple[str, str]]
) -> list[Attachment]:
    """One row per attachment in order, ids chosen here so that a file found inside another
    attachment can point at it."""
    ids = [uuid.uuid4() for _ in parsed]
    return [
        Attachment(
            id=ids[position],
            position=position,
            filename=att.filename,
            content_type=att.content_type,
            size=len(att.content),
            sha256=sha,
            blob_key=key,
            content_id=att.content_id,
            inline=att.inline,
            parent_id=ids[att.parent] if att.parent is not None else None,
            source_subject=att.source_subject,
            source_from=bounded(att.source_from, _SOURCE_FROM_CHARS) if att.source_from else None,
        )
        for position, (att, (sha, key)) in enumerate(zip(parsed, keys, strict=True))
    ]
