"""A database that cannot be reached is a 503 `service_unavailable` with Retry-After on every
route, with one warning line and no traceback; not a 500.

In process, on real databases: the pool exhausted (both backends), a PostgreSQL port nobody
listens on, a SQLite file that cannot be opened. The server process against a PostgreSQL
cluster that is stopped mid-run is in app/tests/faults/test_database_down.py.
"""

from __future__ import annotations

import errno
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.core.config import Settings
from app.core.outages import database_unavailable
from app.core.security import ALL_SCOPES, create_access_token
from app.main import create_app
from app.tests.conftest import make_settings
from app.tests.core.test_errors_and_middleware import assert_envelope
from app.tests.server_process import free_port


def bearer(settings: Settings) -> dict[str, str]:
    # A well-signed token: the request gets as far as looking its user up in the database.
    issued = create_access_token(
        user_id=uuid.uuid4(), scopes=ALL_SCOPES, secret_key=settings.secret_key, expires_minutes=5
    )
    return {"Authorization": f"Bearer {issued.access_token}"}


async def requests_while_unavailable(
    client: httpx.AsyncClient, settings: Settings
) -> list[httpx.Response]:
    headers = bearer(settings)
    return [
        await client.get("/api/v1/emails", headers=headers),
        await client.get("/api/v1/events", headers=headers),
        await client.get("/api/v1/auth/me", headers=headers),
        await client.post(
            "/api/v1/auth/token",
            data={"username": "ops@example.com", "password": "correct horse battery staple"},
        ),
    ]


def assert_unavailable(responses: list[httpx.Response], log: str) -> None:
    for response in responses:
        error = assert_envelope(response, 503, "service_unavailable")
        assert response.headers["Retry-After"] == "5"
        assert error["message"] == "The database is unavailable; retry later."
    assert "Traceback" not in log
    assert "request.unhandled_exception" not in log
    assert log.count("request.database_unavailable") == len(responses)


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    # No worker: nothing but the test and its requests takes a connection from the pool.
    return {
        "db_pool_size": 1,
        "db_max_overflow": 0,
        "db_pool_timeout": 0.2,
        "processing_enabled": False,
    }


async def test_pool_timeout_is_503(
    app: FastAPI,
    client: httpx.AsyncClient,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The pool's only connection is held: every request waits DB_POOL_TIMEOUT, then gives up.
    async with app.state.services.engine.connect() as held:
        await held.execute(text("SELECT 1"))
        capsys.readouterr()
        responses = await requests_while_unavailable(client, settings)
        log = capsys.readouterr().err
    assert_unavailable(responses, log)
    # Given back, the pool serves again: the same token is now simply unknown.
    response = await client.get("/api/v1/emails", headers=bearer(settings))
    assert_envelope(response, 401, "not_authenticated")


@pytest.fixture
async def unreachable_client(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    settings = make_settings(request.param(tmp_path), tmp_path, processing_enabled=False)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://kave.test") as client:
            yield client, settings


def _refused(_: Path) -> str:
    return f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/kave"


def _sqlite_cannot_open(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'unmounted' / 'kave.db'}"


@pytest.mark.parametrize(
    "unreachable_client",
    [_refused, _sqlite_cannot_open],
    indirect=True,
    ids=["postgres-refused", "sqlite-cannot-open"],
)
async def test_unreachable_database_is_503(
    unreachable_client: tuple[httpx.AsyncClient, Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    client, settings = unreachable_client
    capsys.readouterr()
    responses = await requests_while_unavailable(client, settings)
    assert_unavailable(responses, capsys.readouterr().err)


async def test_a_database_error_that_is_a_bug_stays_a_500(
    app: FastAPI, client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    @app.get("/bad-sql")
    async def bad_sql() -> None:
        async with app.state.services.engine.connect() as conn:
            await conn.execute(text("SELECT * FROM no_such_table_anywhere"))

    capsys.readouterr()
    error = assert_envelope(await client.get("/bad-sql"), 500, "internal_error")
    assert error["message"] == "An unexpected error occurred."
    log = capsys.readouterr().err
    assert "request.unhandled_exception" in log and "request.database_unavailable" not in log


@pytest.mark.parametrize(
    ("exc", "unavailable"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"), True),
        (OSError(errno.EHOSTUNREACH, "No route to host"), True),
        # asyncio, when every address of a name (localhost: ::1 and 127.0.0.1) refuses.
        (OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 5432, 0, 0)"), True),
        (TimeoutError(), True),
        (PermissionError(errno.EACCES, "Permission denied"), False),
        (FileNotFoundError(errno.ENOENT, "No such file"), False),
        (RuntimeError("Multiple exceptions: not a socket"), False),
    ],
)
def test_which_plain_errors_mean_unreachable(exc: BaseException, unavailable: bool) -> None:
    # The shapes a connect can end with that no database here can be made to produce at will.
    assert database_unavailable(exc) is unavailable
