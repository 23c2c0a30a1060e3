"""One typed settings object, read from the environment and an optional `.env`."""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "dev-secret-key-change-me"})
DEV_SECRET_KEY = "dev-secret-key-change-me"  # noqa: S105 (the placeholder we refuse)
# Development's webhook key when MAILCHIMP_WEBHOOK_SECRET is empty, so a first run can verify
# a batch `send-test` signs. Public (it is in the source and logged at start), so it is only
# ever used in development: production refuses an empty key, and never falls back to this one.
DEVELOPMENT_WEBHOOK_KEY = "kave-development-webhook-key"
# Where the Mandrill webhook is served, under the API prefix; the default webhook URL ends so.
MANDRILL_WEBHOOK_PATH = "/api/v1/webhooks/mailchimp"
# Mandrill's URL-verification key, published in its documentation: anyone can sign with it.
SETUP_CHECK_WEBHOOK_KEY = "test-webhook"
# Mailchimp's webhook keys are 22 base64url characters (~130 bits). The floor is lower, so a
# change of format on Mailchimp's side cannot stop start-up, yet 16 characters (~96 bits when
# random) refuse the one-letter, the placeholder and the half-pasted key.
WEBHOOK_KEY_MIN_LENGTH = 16
# The audience token is a path segment: only RFC 3986 unreserved characters pass through every
# client, proxy and router unchanged (a `/` made the registered URL a 404), and 24 of them
# (`secrets.token_urlsafe(32)` gives 43) are out of reach of guessing.
AUDIENCE_TOKEN_MIN_LENGTH = 24
_URL_SAFE_TOKEN = re.compile(r"[A-Za-z0-9._~-]+")
RATE_LIMIT_SCHEMES = frozenset(
    {"memory", "redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster"}
)


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class StorageBackend(StrEnum):
    LOCAL = "local"
    S3 = "s3"


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    # hide_input_in_errors: a refused value is often a secret; no error message may quote it.
    # env_ignore_empty: an empty variable is an unset one, so docker-compose.yml can pass every
    # setting as `${NAME:-}` (only those in .env or the shell have a value).
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        hide_input_in_errors=True,
        env_ignore_empty=True,
    )

    environment: Environment = Environment.DEVELOPMENT
    database_url: str = "sqlite+aiosqlite:///./kave.db"

    storage_backend: StorageBackend = StorageBackend.LOCAL
    storage_local_path: Path = Path("./data/attachments")
    s3_bucket: str = "kave-attachments"
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    presigned_url_ttl_seconds: int = Field(default=300, ge=1, le=604800)

    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    access_token_expire_minutes: int = Field(default=60, ge=1)
    token_rate_limit: str = "5/minute"  # noqa: S105 (a rate, not a secret)
    # Lifetime of an operator console sign-in (the session cookie); a password change,
    # disabling the user or a widened scope ends it earlier, as it ends API tokens.
    console_session_minutes: int = Field(default=480, ge=1, le=60 * 24 * 30)
    rate_limit_storage_url: str = "memory://"
    # Peers whose X-Forwarded-For uvicorn believes (it reads this same variable itself, and
    # Kave's launchers pass it on); empty, Kave's default, trusts none, so a client cannot
    # choose the address its token attempts are counted under. Checked here because uvicorn
    # silently ignores an entry it cannot parse.
    forwarded_allow_ips: str = ""

    # Where this process listens, as `make run` passes them to uvicorn (HOST, PORT): only
    # used to derive MAILCHIMP_WEBHOOK_URL when that is not set.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    # Empty: http://HOST:PORT/api/v1/webhooks/mailchimp (what a local run is reached at).
    mailchimp_webhook_url: str = ""
    mailchimp_webhook_secret: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    mailchimp_audience_webhook_token: SecretStr | None = None
    mailchimp_fired_at_timezone: str = "UTC"
    mailchimp_api_base_url: str | None = None
    mailchimp_api_key: SecretStr | None = None
    mailchimp_server_prefix: str | None = None

    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The Mandrill webhook's limit (every other route: 1 MiB or this, whichever is smaller).
    # Mandrill documents no inbound limit but caps messages at 25 MB, and a payload carries the
    # message twice: raw_msg, then each attachment again, decoded and base64-encoded, in
    # `attachments`/`images`; its JSON writes `/` as `\/` and the form url-encodes that. Computed
    # (app/tests/webhooks/test_large_bodies.py), 25 MiB of binary attachments make a 77.4 MiB
    # body (a 25 MiB message in all, 56.6 MiB); 96 MiB leaves room for text attachments and
    # bodies, which are escaped more. A refused authentic batch holds back all later mail.
    max_body_bytes: int = Field(default=96 * 1024 * 1024, ge=1024)
    # Webhook bodies over 1 MiB (or of unknown size) received at once, in each process: each
    # may take a spool file on disk up to MAX_BODY_BYTES and, once authentic, a few copies of
    # itself in memory. One more waits up to LARGE_BODY_WAIT_SECONDS for a turn, then is
    # answered 503 with Retry-After (Mailchimp retries it; nothing is lost).
    large_bodies_at_once: int = Field(default=4, ge=1)
    large_body_wait_seconds: float = Field(default=5.0, ge=0)
    # Once admitted, a large body must have arrived within this, or it is answered 408 and
    # its turn goes to the next: a sender trickling bodies in holds turns only so long.
    large_body_read_seconds: float = Field(default=60.0, gt=0)
    metrics_token: SecretStr | None = None

    log_level: str = "INFO"
    log_format: LogFormat | None = None

    db_pool_size: int = Field(default=20, ge=1)
    db_max_overflow: int = Field(default=20, ge=0)
    db_pool_timeout: float = Field(default=10.0, gt=0)
    db_pool_recycle: int = Field(default=1800, ge=-1)

    processing_enabled: bool = True
    # With processing enabled, the app hands it to this many worker child processes (started
    # and stopped with it) so parsing never shares the event loop that acknowledges; 0 runs it
    # in the API's own loop, as one process.
    worker_processes: int = Field(default=1, ge=0, le=16)
    # The liveness/readiness/metrics port of `kave worker` (0: none).
    worker_health_port: int = Field(default=8001, ge=0, le=65535)
    worker_health_host: str = "127.0.0.1"
    # How often a worker without a LISTEN connection (SQLite; PostgreSQL while it reconnects)
    # looks for new events: the latency from an API-only process's 200 to processing.
    worker_poll_seconds: float = Field(default=0.05, gt=0, le=60)
    worker_concurrency: int = Field(default=8, ge=1, le=256)
    worker_batch_size: int = Field(default=16, ge=1, le=500)
    max_attempts: int = Field(default=8, ge=1)
    retry_base_seconds: float = Field(default=2.0, gt=0)
    retry_max_seconds: float = Field(default=3600.0, gt=0)
    event_lease_seconds: float = Field(default=300.0, gt=0)
    recovery_interval_seconds: float = Field(default=2.0, gt=0)
    event_retention_days: int = Field(default=30, ge=0)
    # Days an email (its rows, its raw message and the attachments no younger email shares) is
    # kept after it was received; the worker's purge loop deletes older ones hourly. 0 keeps
    # every email. `kave emails purge --older-than DAYS` does the same by hand.
    email_retention_days: int = Field(default=0, ge=0)

    # The outlet: notifications to destinations and the links they carry.
    # Unset: http://HOST:PORT, like the webhook URL (right for `make run`, wrong behind a proxy).
    public_base_url: str = ""
    destinations_allow_private_networks: bool | None = None
    notification_retry_schedule: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0]
    )
    notification_timeout_seconds: float = Field(default=15.0, gt=0, le=300)
    notification_max_in_flight: int = Field(default=4, ge=1, le=64)
    notification_poll_seconds: float = Field(default=1.0, gt=0)
    notification_html_max_bytes: int = Field(default=256 * 1024, ge=0)
    notification_link_ttl_seconds: int = Field(default=86400, ge=60, le=30 * 86400)
    notification_failing_threshold: int = Field(default=5, ge=1)
    destination_secret_overlap_seconds: int = Field(default=86400, ge=0)

    @field_validator("mailchimp_webhook_secret", mode="before")
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("notification_retry_schedule", mode="before")
    @classmethod
    def _parse_schedule(cls, value: object) -> object:
        if isinstance(value, str):
            return [_duration_seconds(part) for part in value.split(",") if part.strip()]
        return value

    @field_validator("notification_retry_schedule")
    @classmethod
    def _non_negative_schedule(cls, value: list[float]) -> list[float]:
        if any(step < 0 for step in value):
            raise ValueError("NOTIFICATION_RETRY_SCHEDULE delays must not be negative")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value:
            return value
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
            raise ValueError(
                "PUBLIC_BASE_URL must be an http(s) URL such as https://kave.example.com"
            )
        return value.rstrip("/")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("mailchimp_audience_webhook_token")
    @classmethod
    def _url_safe_token(cls, value: SecretStr | None) -> SecretStr | None:
        token = value.get_secret_value() if value is not None else ""
        if not token:  # unset or empty: the audience endpoint answers 404
            return value
        if not _URL_SAFE_TOKEN.fullmatch(token):
            raise ValueError(
                "MAILCHIMP_AUDIENCE_WEBHOOK_TOKEN may hold only the URL-safe characters "
                "A-Z a-z 0-9 - _ . ~ (generate one with: python -c "
                '"import secrets; print(secrets.token_urlsafe(32))")'
            )
        if len(token) < AUDIENCE_TOKEN_MIN_LENGTH:
            raise ValueError(
                f"MAILCHIMP_AUDIENCE_WEBHOOK_TOKEN must be at least {AUDIENCE_TOKEN_MIN_LENGTH} "
                "characters long"
            )
        return value

    @field_validator("rate_limit_storage_url")
    @classmethod
    def _known_rate_limit_storage(cls, value: str) -> str:
        # The storages whose client is installed: `limits`' own memory one and redis-py.
        scheme = value.removeprefix("async+").split("://", 1)[0] if "://" in value else ""
        if scheme not in RATE_LIMIT_SCHEMES:
            raise ValueError(
                "RATE_LIMIT_STORAGE_URL must be memory:// or a Redis URL "
                "(redis://host:6379[/db], rediss://, redis+unix://, redis+sentinel://, "
                "redis+cluster://)"
            )
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxy_addresses(cls, value: str) -> str:
        entries = [part.strip() for part in value.split(",") if part.strip()]
        if entries == ["*"]:
            return "*"
        for entry in entries:
            try:
                # As uvicorn reads them: with a slash a network (host bits unset), else one address.
                if "/" in entry:
                    ipaddress.ip_network(entry)
                else:
                    ipaddress.ip_address(entry)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network; give addresses or networks "
                    "separated by commas, `*` alone to trust every peer, or nothing for none"
                ) from None
        return ",".join(entries)

    @field_validator("mailchimp_fired_at_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like UTC)") from exc
        return value

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"}:
            raise ValueError("LOG_LEVEL must be one of CRITICAL, ERROR, WARNING, INFO, DEBUG")
        return level

    @model_validator(mode="after")
    def _local_defaults(self) -> Settings:
        """The webhook and public URLs from HOST/PORT when unset; in development, a key when
        none is set."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        local = f"http://{host}:{self.port}"
        self.public_base_url = self.public_base_url or local
        self.mailchimp_webhook_url = self.mailchimp_webhook_url or f"{local}{MANDRILL_WEBHOOK_PATH}"
        if self.environment is Environment.DEVELOPMENT and not self.mailchimp_webhook_secret:
            self.mailchimp_webhook_secret = [SecretStr(DEVELOPMENT_WEBHOOK_KEY)]
        return self

    @model_validator(mode="after")
    def _refuse_weak_secrets(self) -> Settings:
        """Production refuses placeholders; production and test refuse weak webhook keys.

        Development takes anything, so a first run needs no key of its own (it gets the
        development key above). The test suite's
        keys are real-looking ones, so `test` is held to the same rule as production.
        """
        if self.environment is Environment.DEVELOPMENT:
            return self
        problems = []
        keys = [key.get_secret_value() for key in self.mailchimp_webhook_secret]
        if self.environment is Environment.PRODUCTION:
            if (
                self.secret_key.get_secret_value() in PLACEHOLDER_SECRETS
                or len(self.secret_key.get_secret_value()) < 32
            ):
                problems.append(
                    "SECRET_KEY must be set to a random value of at least 32 characters"
                )
            if not keys or any(key in PLACEHOLDER_SECRETS for key in keys):
                problems.append(
                    "MAILCHIMP_WEBHOOK_SECRET must hold the webhook key(s) from Mailchimp"
                )
        problems.extend(_weak_webhook_keys(keys))
        if problems:
            raise ValueError(
                f"refusing to start in {self.environment.value}: " + "; ".join(problems)
            )
        return self

    @property
    def effective_log_format(self) -> LogFormat:
        if self.log_format is not None:
            return self.log_format
        if self.environment is Environment.DEVELOPMENT:
            return LogFormat.CONSOLE
        return LogFormat.JSON

    @cached_property
    def webhook_keys(self) -> tuple[bytes, ...]:
        return tuple(key.get_secret_value().encode() for key in self.mailchimp_webhook_secret)

    @property
    def uses_development_webhook_key(self) -> bool:
        return self.webhook_keys == (DEVELOPMENT_WEBHOOK_KEY.encode(),)

    @property
    def private_networks_allowed(self) -> bool:
        """Destinations may point at loopback/private addresses (and plain http): by default
        everywhere but production."""
        if self.destinations_allow_private_networks is not None:
            return self.destinations_allow_private_networks
        return self.environment is not Environment.PRODUCTION

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _duration_seconds(text: str) -> float:
    """`5s`, `30m`, `2h`, `0.05` (seconds when no unit) -> seconds."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text.strip()!r} is not a duration (write e.g. 5s, 5m, 2h)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]


def _weak_webhook_keys(keys: list[str]) -> list[str]:
    """What is wrong with the configured webhook keys; never the keys themselves."""
    problems = []
    for number, key in enumerate(keys, start=1):
        which = f"key {number} of {len(keys)}" if len(keys) > 1 else "the key"
        if key == DEVELOPMENT_WEBHOOK_KEY:
            problems.append(
                f"MAILCHIMP_WEBHOOK_SECRET: {which} is Kave's public development key; set the "
                "webhook's own key from Mailchimp"
            )
        elif key == SETUP_CHECK_WEBHOOK_KEY:
            problems.append(
                f"MAILCHIMP_WEBHOOK_SECRET: {which} is {SETUP_CHECK_WEBHOOK_KEY!r}, Mandrill's "
                "public URL-verification key, with which anyone can sign a batch; set the "
                "webhook's own key from Mailchimp"
            )
        elif len(key) < WEBHOOK_KEY_MIN_LENGTH:
            problems.append(
                f"MAILCHIMP_WEBHOOK_SECRET: {which} is shorter than {WEBHOOK_KEY_MIN_LENGTH} "
                "characters (Mailchimp's webhook keys have 22)"
            )
    return problems


def get_settings() -> Settings:
    return Settings()


def load_settings() -> Settings:
    """Settings for start-up: a configuration mistake ends the process with a readable message."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        ]
        message = "Kave cannot start, the configuration is invalid:\n" + "\n".join(lines)
        raise SystemExit(message) from None
