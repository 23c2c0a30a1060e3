"""structlog for everything: our own loggers and stdlib ones (uvicorn, SQLAlchemy) alike, one
format on stderr."""

from __future__ import annotations

import json
import logging
import logging.config
import sys
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


class _StderrLogger:
    """Where structlog's own lines go: straight to stderr, not through the stdlib's records,
    handlers and locks (a third of an access line's cost). `sys.stderr` is looked up per
    line, so whatever captures it (a test, a process manager) sees every line."""

    __slots__ = ("name",)

    def __init__(self, name: str = "") -> None:
        self.name = name  # what add_logger_name reads

    def msg(self, message: str) -> None:
        stream = sys.stderr
        stream.write(message + "\n")
        stream.flush()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def _stderr_logger(*args: Any) -> _StderrLogger:
    return _StderrLogger(str(args[0]) if args else "")


_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}
_min_level = logging.INFO
_PROCESSORS: list[Processor] = []


def _filter_level(_: Any, method_name: str, event_dict: EventDict) -> EventDict:
    # A processor rather than a level baked into the bound logger: loggers are cached on
    # first use, and the level must follow `configure_logging` (tests configure it often).
    if _LEVELS.get(method_name, logging.INFO) < _min_level:
        raise structlog.DropEvent
    return event_dict


def configure_logging(settings: Settings) -> None:
    global _min_level
    _min_level = logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO)
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

    # One list, changed in place: loggers cached on first use keep a reference to it, and must
    # follow a later configuration (tests configure formats and levels many times).
    _PROCESSORS[:] = [_filter_level, *shared, renderer]
    structlog.configure(
        processors=_PROCESSORS,
        logger_factory=_stderr_logger,
        wrapper_class=structlog.make_filtering_bound_logger(logging.NOTSET),
        cache_logger_on_first_use=True,
    )
    # Other libraries' stdlib loggers (uvicorn, SQLAlchemy, Alembic) are rendered the same way.
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
