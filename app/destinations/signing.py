"""Signing secrets and Standard Webhooks signatures."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes, the form Standard Webhooks libraries read."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secrets_: Sequence[str], *, msg_id: str, timestamp: datetime, body: str) -> str:
    """The `webhook-signature` header: one `v1,...` per secret (rotation), space-separated."""
    return " ".join(
        Webhook(secret).sign(msg_id=msg_id, timestamp=timestamp, data=body) for secret in secrets_
    )
