"""Audience webhooks at Mailchimp, through the official `mailchimp-marketing` client.

The client is synchronous (`requests`), so every call runs in a worker thread. Kave builds the
API root itself (`https://{prefix}.api.mailchimp.com/3.0`, or `MAILCHIMP_API_BASE_URL` when set,
e.g. a local double in tests) and hands the client an empty `server`: the client would otherwise
replace every occurrence of the word "server" anywhere in the request URL with the prefix.
"""

from __future__ import annotations

import asyncio
import hmac
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Literal, get_args
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import mailchimp_marketing
import orjson
import structlog
from mailchimp_marketing.api_client import ApiClientError
from pydantic import SecretStr

from app.audience.webhook import AUDIENCE_WEBHOOK_PATH
from app.core.config import Settings
from app.mailchimp.errors import (
    InvalidMailchimpId,
    InvalidPublicUrl,
    MailchimpError,
    MailchimpNotConfigured,
    MailchimpUnreachable,
)

logger = structlog.get_logger("app.mailchimp")

AudienceEventName = Literal["subscribe", "unsubscribe", "profile", "cleaned", "upemail", "campaign"]
WebhookSource = Literal["user", "admin", "api"]
AUDIENCE_EVENTS: tuple[AudienceEventName, ...] = get_args(AudienceEventName)
WEBHOOK_SOURCES: tuple[WebhookSource, ...] = get_args(WebhookSource)
REQUEST_TIMEOUT_SECONDS = 15
MASK = "***"

_SERVER_PREFIX = re.compile(r"[a-z]{1,8}[0-9]{1,4}")
# Mailchimp ids are short hex/alphanumeric strings; anything else could walk the API path.
_MAILCHIMP_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class MailchimpConfig:
    api_key: SecretStr
    api_root: str

    def __repr__(self) -> str:
        return f"MailchimpConfig(api_root={self.api_root!r})"


def mailchimp_config(settings: Settings) -> MailchimpConfig:
    """The API key and root from settings; `MailchimpNotConfigured` when either is missing."""
    key = settings.mailchimp_api_key.get_secret_value() if settings.mailchimp_api_key else ""
    prefix = (settings.mailchimp_server_prefix or "").strip().lower()
    if not key or not prefix:
        raise MailchimpNotConfigured()
    base_url = settings.mailchimp_api_base_url
    if base_url:
        return MailchimpConfig(SecretStr(key), base_url.rstrip("/"))
    if not _SERVER_PREFIX.fullmatch(prefix):
        raise MailchimpNotConfigured(
            "MAILCHIMP_SERVER_PREFIX must be the data-center prefix of the API host, e.g. us19."
        )
    return MailchimpConfig(SecretStr(key), f"https://{prefix}.api.mailchimp.com/3.0")


def check_mailchimp_id(value: str, name: str = "id") -> str:
    if not _MAILCHIMP_ID.fullmatch(value):
        raise InvalidMailchimpId(f"The {name} {value[:70]!r} is not a Mailchimp id.")
    return value


def audience_webhook_url(public_url: str, token: SecretStr | None) -> str:
    """`https://kave.example.com` -> `https://kave.example.com/api/v1/webhooks/mailchimp/audience/<token>`.

    `public_url` is the base URL at which Mailchimp reaches Kave, optionally with a path prefix
    when a proxy mounts Kave below one; Kave appends the webhook path and the token.
    """
    secret = token.get_secret_value() if token else ""
    if not secret:
        raise MailchimpNotConfigured(
            "MAILCHIMP_AUDIENCE_WEBHOOK_TOKEN is not set: Kave has no webhook URL to register."
        )
    try:
        parts = urlsplit(public_url.strip())
        valid = parts.scheme in {"http", "https"} and bool(parts.hostname)
        _ = parts.port  # raises on a malformed port
    except ValueError:
        valid = False
    if not valid or parts.query or parts.fragment:
        raise InvalidPublicUrl()
    path = parts.path.rstrip("/")
    if "/webhooks/mailchimp/audience" in path:
        raise InvalidPublicUrl(
            "Pass Kave's public base URL only: Kave appends "
            f"{AUDIENCE_WEBHOOK_PATH}/<token> itself."
        )
    return urlunsplit(
        (
            parts.scheme,
            parts.netloc,
            f"{path}{AUDIENCE_WEBHOOK_PATH}/{quote(secret, safe='')}",
            "",
            "",
        )
    )


def mask_webhook_url(url: str) -> str:
    """The URL with the token after the audience webhook path replaced by `***`."""
    marker = "/webhooks/mailchimp/audience/"
    head, found, _ = url.partition(marker)
    return f"{head}{marker}{MASK}" if found else url


def points_at_kave(url: str, token: SecretStr | None) -> bool:
    """Whether a registered URL carries Kave's current token (compared in constant time)."""
    secret = token.get_secret_value() if token else ""
    _, found, tail = urlsplit(url).path.partition("/webhooks/mailchimp/audience/")
    if not secret or not found:
        return False
    return hmac.compare_digest(
        unquote(tail).encode("utf-8", "surrogatepass"), secret.encode("utf-8", "surrogatepass")
    )


def webhook_body(url: str, *, events: Collection[str], sources: Collection[str]) -> dict[str, Any]:
    """Every event and source named explicitly, so what Mailchimp does is never a default."""
    return {
        "url": url,
        "events": {name: name in events for name in AUDIENCE_EVENTS},
        "sources": {name: name in sources for name in WEBHOOK_SOURCES},
    }


def _client(config: MailchimpConfig) -> Any:
    client = mailchimp_marketing.Client()
    client.set_config(
        {
            "api_key": config.api_key.get_secret_value(),
            "server": "",
            "timeout": REQUEST_TIMEOUT_SECONDS,
        }
    )
    client.api_client.host = config.api_root
    return client


def _problem(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    if isinstance(text, bytes | str):
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _as_error(status: int | None, text: Any) -> MailchimpError:
    if status is None:
        # No answer at all: `text` is the transport exception. Its type is enough to log.
        logger.warning("mailchimp.unreachable", exc_type=type(text).__name__)
        return MailchimpUnreachable()
    problem = _problem(text)
    title = str(problem.get("title") or f"HTTP {status}")[:200]
    detail = str(problem.get("detail") or "")[:1000]
    logger.warning("mailchimp.error", status=status, title=title)
    errors = problem.get("errors")
    return MailchimpError(
        f"Mailchimp answered {status} {title}" + (f": {detail}" if detail else "."),
        details=[
            {
                "mailchimp_status": status,
                "title": title,
                "detail": detail,
                **({"errors": errors} if isinstance(errors, list) else {}),
            }
        ],
    )


def _call(config: MailchimpConfig, operation: Callable[[Any], Any]) -> Any:
    try:
        result = operation(_client(config))
    except ApiClientError as exc:
        raise _as_error(exc.status_code, exc.text) from exc
    # On an empty or non-JSON body the client returns the `requests` response itself, even
    # for an error status: check it rather than take it for success.
    status = getattr(result, "status_code", None)
    if isinstance(status, int) and status >= 400:
        raise _as_error(status, getattr(result, "text", ""))
    return result


async def create_audience_webhook(
    config: MailchimpConfig,
    *,
    list_id: str,
    url: str,
    events: Collection[str] = AUDIENCE_EVENTS,
    sources: Collection[str] = WEBHOOK_SOURCES,
) -> dict[str, Any]:
    check_mailchimp_id(list_id, "list id")
    body = webhook_body(url, events=events, sources=sources)
    result = await asyncio.to_thread(
        _call, config, lambda c: c.lists.create_list_webhook(list_id, body)
    )
    return result if isinstance(result, dict) else {}


async def list_audience_webhooks(config: MailchimpConfig, *, list_id: str) -> dict[str, Any]:
    check_mailchimp_id(list_id, "list id")
    result = await asyncio.to_thread(_call, config, lambda c: c.lists.get_list_webhooks(list_id))
    return result if isinstance(result, dict) else {}


async def delete_audience_webhook(
    config: MailchimpConfig, *, list_id: str, webhook_id: str
) -> None:
    check_mailchimp_id(list_id, "list id")
    check_mailchimp_id(webhook_id, "webhook id")
    await asyncio.to_thread(
        _call, config, lambda c: c.lists.delete_list_webhook(list_id, webhook_id)
    )
