"""Reference points for the ack path, served by the same uvicorn settings as Kave.

`fastapi_app`: one FastAPI route that reads the body with `await request.form()`, answers 200.
`asgi_app`: a bare ASGI callable that reads the body and answers 200.
`database_rate`: the database's own one-row-commit rate for rows like Kave's.
Both apps also answer GET /health/live, so the bench can wait for them like for Kave.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from starlette.types import Receive, Scope, Send

if TYPE_CHECKING:
    from bench.db import Database

fastapi_app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@fastapi_app.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@fastapi_app.post("/api/v1/webhooks/mailchimp")
async def form_route(request: Request) -> Response:
    form = await request.form()
    await form.close()
    return Response(status_code=200)


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = b'{"status":"ok"}' if scope["method"] == "GET" else b""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


TABLE = "bench_rows"


async def database_rate(
    db: Database, payload: str, *, duration: float, connections: int, sqlite_path: Path | None
) -> dict[str, Any]:
    """Insert and commit one row (~ the form value of one body) per transaction, for `duration`
    seconds: `connections` asyncpg connections on PostgreSQL, one aiosqlite connection on SQLite
    (same pragmas as Kave: WAL, synchronous=FULL). The table has a unique key like Kave's."""
    latencies: list[float] = []
    if db.is_sqlite:
        assert sqlite_path is not None
        count, elapsed = await _sqlite_loop(sqlite_path, payload, duration, latencies)
        used = 1
    else:
        count, elapsed = await _postgres_loop(db, payload, duration, connections, latencies)
        used = connections
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    return {
        "rows": count,
        "seconds": elapsed,
        "rate": count / elapsed,
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "connections": used,
        "row_bytes": len(payload),
    }


_CREATE_PG = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    id uuid PRIMARY KEY, dedupe_key varchar(64) NOT NULL UNIQUE, payload text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now())"""
_INSERT_PG = f"INSERT INTO {TABLE} (id, dedupe_key, payload) VALUES ($1, $2, $3)"


async def _postgres_loop(
    db: Database, payload: str, duration: float, connections: int, latencies: list[float]
) -> tuple[int, float]:
    import asyncpg  # type: ignore[import-untyped]

    conns = [await asyncpg.connect(**db.connect_kwargs()) for _ in range(connections)]
    try:
        await conns[0].execute(_CREATE_PG)
        await conns[0].execute(f"TRUNCATE {TABLE}")
        begun = time.perf_counter()
        deadline = begun + duration

        async def loop(conn: Any) -> int:
            done = 0
            while (started := time.perf_counter()) < deadline:
                await conn.execute(_INSERT_PG, uuid.uuid4(), uuid.uuid4().hex, payload)
                latencies.append(time.perf_counter() - started)
                done += 1
            return done

        counts = await asyncio.gather(*(loop(c) for c in conns))
        elapsed = time.perf_counter() - begun
        await conns[0].execute(f"DROP TABLE {TABLE}")
        return sum(counts), elapsed
    finally:
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)


async def _sqlite_loop(
    path: Path, payload: str, duration: float, latencies: list[float]
) -> tuple[int, float]:
    import aiosqlite

    async with aiosqlite.connect(path, timeout=30) as conn:
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=30000"):
            await conn.execute(f"PRAGMA {pragma}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (id TEXT PRIMARY KEY, "
            "dedupe_key TEXT NOT NULL UNIQUE, payload TEXT NOT NULL)"
        )
        await conn.execute(f"DELETE FROM {TABLE}")
        await conn.commit()
        insert = f"INSERT INTO {TABLE} (id, dedupe_key, payload) VALUES (?, ?, ?)"
        begun = time.perf_counter()
        deadline = begun + duration
        done = 0
        while (started := time.perf_counter()) < deadline:
            await conn.execute(insert, (str(uuid.uuid4()), uuid.uuid4().hex, payload))
            await conn.commit()
            latencies.append(time.perf_counter() - started)
            done += 1
        elapsed = time.perf_counter() - begun
        await conn.execute(f"DROP TABLE {TABLE}")
        await conn.commit()
        return done, elapsed
