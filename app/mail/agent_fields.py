"""What an application acting on mail needs beyond the message itself, computed once.

The new words of a reply, what kind of message it is, and whether its From can be trusted:
see reply, category and sender_auth. Pure: a ParsedEmail in, plain data out.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.mail.category import Classification, classify
from app.mail.parsed import ParsedEmail
from app.mail.reply import reply_text
from app.mail.sender_auth import SenderAuthentication, authenticate_sender


@dataclass(frozen=True, slots=True)
class AgentFields:
    reply_text: str | None
    classification: Classification
    sender: SenderAuthentication


def agent_fields(parsed: ParsedEmail) -> AgentFields:
    return AgentFields(
        reply_text=reply_text(parsed.text_body, parsed.html_body),
        classification=classify(parsed),
        sender=authenticate_sender(parsed),
    )
