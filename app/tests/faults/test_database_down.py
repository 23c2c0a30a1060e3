"""PostgreSQL stopped, or hung, under a running server: the management API and the token
endpoint answer 503 `service_unavailable` with Retry-After (like the webhook, see
test_database_outage.py), with one warning line per request and no traceback in the server's
log; they serve again once the database is back.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from app.core.security import ALL_SCOPES, create_access_token
from app.tests.faults.harness import FaultDatabase, Servers, log_events
from app.tests.faults.postgres import ThrowawayPostgres
from app.tests.faults.proxy import BlackholeProxy
from app.tests.server_process import ServerProcess

pytestmark = [pytest.mark.faults, pytest.mark.slow]

SECRET_KEY = "fault-tests-secret-key-that-is-long-enough"
ROUNDS = 3
# The server's env for these tests: its tokens verifiable here, and no rate limit in the way.
SERVER_ENV = {"SECRET_KEY": SECRET_KEY, "TOKEN_RATE_LIMIT": "1000/minute"}


def _token() -> str:
    return create_access_token(
        user_id=uuid.uuid4(),
        scopes=ALL_SCOPES,
        secret_key=SecretStr(SECRET_KEY),
        expires_minutes=10,
    ).access_token


def _requests(token: str) -> list[tuple[str, str, dict[str, Any]]]:
    auth = {"headers": {"Authorization": f"Bearer {token}"}}
    login = {"data": {"username": "ops@example.com", "password": "correct horse battery staple"}}
    return [
        ("GET", "/api/v1/emails", auth),
        ("GET", "/api/v1/events", auth),
        ("GET", "/api/v1/audience-events", auth),
        ("POST", "/api/v1/auth/token", login),
    ]


async def _send_all(server: ServerProcess, token: str) -> list[httpx.Response]:
    """The requests at once, so several want a connection from the pool at the same time."""
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
        return list(
            await asyncio.gather(
                *(client.request(method, path, **kw) for method, path, kw in _requests(token))
            )
        )


def _assert_503s(server: ServerProcess, down: list[httpx.Response]) -> list[dict[str, object]]:
    for response in down:
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "service_unavailable"
        assert response.headers["Retry-After"] == "5"
        assert response.json()["error"]["request_id"] == response.headers["X-Request-ID"]
    log = server.log_path.read_text(errors="replace")
    assert "Traceback" not in log
    assert "request.unhandled_exception" not in log
    warnings = [
        e for e in log_events(server.log_path) if e["event"] == "request.database_unavailable"
    ]
    assert len(warnings) == len(down)  # one line per request
    assert {w["level"] for w in warnings} == {"warning"}
    return warnings


def _exc_types(warnings: list[dict[str, object]]) -> list[str]:
    return sorted({str(w["exc_type"]) for w in warnings})


async def test_database_stopped_is_503_without_a_traceback(
    throwaway_postgres: ThrowawayPostgres, fault_db: FaultDatabase, servers: Servers, tmp_path: Path
) -> None:
    server = await servers.start(
        name="db-down",
        database_url=throwaway_postgres.url,
        storage_path=tmp_path / "blobs",
        **SERVER_ENV,
    )
    token = _token()
    # Up: the requests reach the database (the token's user and the login are unknown there),
    # and leave connections in the pool.
    before = await _send_all(server, token)
    assert [r.status_code for r in before] == [401] * len(before), [r.text for r in before]

    await asyncio.to_thread(throwaway_postgres.stop, "immediate")
    down = [r for _ in range(ROUNDS) for r in await _send_all(server, token)]
    warnings = _assert_503s(server, down)

    await asyncio.to_thread(throwaway_postgres.start)
    after = await _send_all(server, token)
    print(f"\n[fault: database stopped] 503s={len(down)} exc_types={_exc_types(warnings)}")
    assert [r.status_code for r in after] == [401] * len(after), [r.text for r in after]
    assert server.process is not None and server.process.poll() is None


async def test_database_hung_is_503_without_a_traceback(
    throwaway_postgres: ThrowawayPostgres, fault_db: FaultDatabase, servers: Servers, tmp_path: Path
) -> None:
    """The database stops answering (a partition, not a refusal), and the pool has one
    connection: the request holding it hits the command timeout, the others the pool
    timeout, and all of them are 503s."""
    proxy = BlackholeProxy(throwaway_postgres.port)
    await proxy.start()
    try:
        server = await servers.start(
            name="db-hung",
            database_url=throwaway_postgres.url.replace(
                f":{throwaway_postgres.port}/", f":{proxy.port}/"
            ),
            storage_path=tmp_path / "blobs",
            DB_POOL_SIZE="1",
            DB_MAX_OVERFLOW="0",
            DB_POOL_TIMEOUT="1",
            PROCESSING_ENABLED="false",  # the worker would take the only connection too
            **SERVER_ENV,
        )
        token = _token()
        before = await _send_all(server, token)
        assert [r.status_code for r in before] == [401] * len(before), [r.text for r in before]

        proxy.hanging = True
        down = await _send_all(server, token)
        warnings = _assert_503s(server, down)
    finally:
        await proxy.close()  # drops the swallowed connections: the pool reconnects afresh
    print(f"\n[fault: database hung] 503s={len(down)} exc_types={_exc_types(warnings)}")
    assert "TimeoutError" in _exc_types(warnings)  # the pool's, or the driver's command timeout
