"""Which failures mean "the database is unavailable, retry later" rather than a bug.

A request that fails on one of these is answered 503 `service_unavailable` with `Retry-After`
(see `app.core.errors.unhandled_error_response`), like the webhook's acknowledgement; any other
failure stays a 500 with its traceback in the log.
"""

from __future__ import annotations

import errno
import socket
import sqlite3

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# OSError numbers of a peer that cannot be reached or went away (a `ConnectionError` or a
# `TimeoutError` always counts; these are the plain OSErrors a connect can end with).
_UNREACHABLE_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.EHOSTDOWN,
        errno.ENETUNREACH,
        errno.ENETDOWN,
    }
)
# PostgreSQL SQLSTATEs: class 08 connection exception, 53 insufficient resources (too many
# connections, disk full, out of memory), 58 system error (I/O), and the server going away:
# 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now (starting up or in
# recovery), 57P04 database_dropped, 57P05 idle_session_timeout.
_UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "53", "58"})
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "57P04", "57P05"})
# SQLite primary result codes: busy or locked past busy_timeout, out of memory, disk I/O error,
# disk full, the file cannot be opened (missing directory, unmounted volume), lock protocol.
_UNAVAILABLE_SQLITE_CODES = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
    }
)
_MAX_CHAIN = 8


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc`, the driver error SQLAlchemy wrapped, and what each was raised from."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < _MAX_CHAIN and current not in chain:
        chain.append(current)
        orig = current.orig if isinstance(current, DBAPIError) else None
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return chain


def _means_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, PoolTimeout):  # every pooled connection busy for DB_POOL_TIMEOUT
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:  # the server went away
        return True
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror):
        return True
    if isinstance(exc, OSError):
        # asyncio's connect to a host name with several addresses (localhost: ::1 and
        # 127.0.0.1) that all fail raises one OSError without an errno.
        return exc.errno in _UNREACHABLE_ERRNOS or (
            exc.errno is None and str(exc).startswith("Multiple exceptions: ")
        )
    if isinstance(exc, sqlite3.Error):
        return (exc.sqlite_errorcode & 0xFF) in _UNAVAILABLE_SQLITE_CODES
    sqlstate = getattr(exc, "sqlstate", None)  # asyncpg's errors and SQLAlchemy's translations
    if isinstance(sqlstate, str):
        return sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES or sqlstate in _UNAVAILABLE_SQLSTATES
    return False


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` (or the error it wraps) says the database cannot be reached right now."""
    return any(_means_unavailable(cause) for cause in _causes(exc))


def outage_sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE or SQLite error name behind `exc`, for the log line (never the message)."""
    for cause in _causes(exc):
        if isinstance(cause, sqlite3.Error):
            return getattr(cause, "sqlite_errorname", None)
        sqlstate = getattr(cause, "sqlstate", None)
        if isinstance(sqlstate, str):
            return sqlstate
    return None
