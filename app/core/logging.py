"""structlog for everything: our own loggers and stdlib ones (uvicorn, SQLAlchemy) alike."""

from __future__ import annotations

import json
import logging
import logging.config
from typing import Any

import orjson
import structlog
from structlog.types import EventDict, Processor

from app.core.config import LogFormat, Settings

# Keys whose values must never reach a log line, whoever logs them.
_REDACTED_KEYS = frozenset(
    {
        "password",
        "token",
        "access_token",
        "authorization",
        "signature",
        "secret",
        "secret_key",
        "body",
        "payload",
        "raw_msg",
    }
)


def _redact(_: Any, __: str, event_dict: EventDict) -> EventDict:
    for key in event_dict.keys() & _REDACTED_KEYS:
        event_dict[key] = "[redacted]"
    return event_dict


def _orjson_dumps(value: Any, **_: Any) -> str:
    # orjson renders a line several times faster than the stdlib; what it cannot serialise
    # natively (a custom class) becomes its repr(), as with structlog's own JSON renderer.
    try:
        return orjson.dumps(value, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # e.g. an integer wider than 64 bits
        return json.dumps(value, default=repr)


def configure_logging(settings: Settings) -> None:
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    renderer: Processor
    if settings.effective_log_format is LogFormat.JSON:
        renderer = structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        shared.append(structlog.processors.format_exc_info)
    else:
        # Plain tracebacks: rich ones print local variables, which can hold secrets and bodies.
        renderer = structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )

    structlog.configure(
        processors=[
            # Drop a line below the level before any work is done on it.
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "structlog": {
                    "()": structlog.stdlib.ProcessorFormatter,
                    "processors": [
                        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        renderer,
                    ],
                    "foreign_pre_chain": shared,
                }
            },
            "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "structlog"}},
            "root": {"handlers": ["default"], "level": settings.log_level},
            "loggers": {
                # Our access log replaces uvicorn's; its error log stays.
                "uvicorn": {"handlers": [], "propagate": True},
                "uvicorn.error": {"handlers": [], "propagate": True},
                "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
                "sqlalchemy": {"handlers": [], "propagate": True, "level": "WARNING"},
                "botocore": {"level": "WARNING"},
                "aiobotocore": {"level": "WARNING"},
                "aiosqlite": {"level": "WARNING"},
                "asyncio": {"level": "WARNING"},
            },
        }
    )
