"""Real server processes: a SIGKILL right after acknowledgement, and two replicas on one
database. Every acknowledged event must end processed, and none may be processed twice."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from app.emails.models import Attachment, Email
from app.processing.models import WebhookEvent
from app.tests.conftest import _clear_tables
from app.tests.server_process import ServerProcess
from app.tests.support import WEBHOOK_PATH, build_message, inbound_event, signed_form, wait_until

pytestmark = pytest.mark.slow


def batch(n: int, tag: str) -> list[dict[str, object]]:
    return [
        inbound_event(
            build_message(
                subject=f"{tag} #{i}",
                attachments=[(f"file-{i}.bin", "application/octet-stream", os.urandom(4096))],
            )
        )
        for i in range(n)
    ]


async def post(server: ServerProcess, events: list[dict[str, object]]) -> dict[str, int]:
    body, headers = signed_form(events)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        response = await c.post(WEBHOOK_PATH, content=body, headers=headers)
    assert response.status_code == 200, response.text
    result: dict[str, int] = response.json()
    return result


class Database:
    def __init__(self, url: str) -> None:
        self.engine = create_async_engine(url)

    async def scalar(self, stmt: object) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())  # type: ignore[call-overload]

    async def processed(self) -> int:
        return await self.scalar(
            select(func.count()).select_from(WebhookEvent).where(WebhookEvent.status == "processed")
        )


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop_quietly()


@pytest.fixture
async def db(migrated_database: str) -> AsyncIterator[Database]:
    database = Database(migrated_database)
    yield database
    await database.engine.dispose()
    await _clear_tables(migrated_database)


async def test_sigkill_after_ack_loses_nothing_and_duplicates_nothing(
    migrated_database: str, tmp_path: Path, servers: list[ServerProcess], db: Database
) -> None:
    def new_server() -> ServerProcess:
        server = ServerProcess(
            database_url=migrated_database,
            storage_path=tmp_path / "blobs",
            log=tmp_path / "server.log",
        )
        servers.append(server)
        return server

    first = await asyncio.to_thread(new_server().start)
    events = batch(60, "crash")
    assert await post(first, events) == {"accepted": 60, "duplicates": 0}
    await asyncio.to_thread(first.kill)  # mid-processing: no shutdown code runs
    processed_at_kill = await db.processed()

    second = await asyncio.to_thread(new_server().start)
    # Mailchimp may retry the same batch (it never saw our answer, say): nothing doubles.
    assert (await post(second, events))["duplicates"] == 60

    async def all_processed() -> bool:
        return await db.processed() == 60

    await wait_until(all_processed, timeout=60)
    assert await db.scalar(select(func.count()).select_from(Email)) == 60
    assert await db.scalar(select(func.count(func.distinct(Email.message_id)))) == 60
    assert await db.scalar(select(func.count()).select_from(Attachment)) == 60
    # Every email came from its own event: no event wrote two emails.
    assert await db.scalar(select(func.count(func.distinct(Email.event_id)))) == 60
    print(f"processed before the kill: {processed_at_kill}/60")


@pytest.mark.postgres
async def test_two_replicas_on_one_database_process_each_event_once(
    migrated_database: str,
    tmp_path: Path,
    servers: list[ServerProcess],
    db: Database,
    is_postgres: bool,
) -> None:
    if not is_postgres:
        pytest.skip("replicas sharing a database need PostgreSQL")
    replicas = []
    for name in ("a", "b"):
        server = ServerProcess(
            database_url=migrated_database,
            storage_path=tmp_path / "blobs",
            log=tmp_path / f"replica-{name}.log",
            EVENT_LEASE_SECONDS="60",
        )
        servers.append(server)
        replicas.append(server)
    await asyncio.gather(*(asyncio.to_thread(s.start) for s in replicas))

    batches = [batch(10, f"replica-{i}") for i in range(20)]
    results = await asyncio.gather(
        *(post(replicas[i % 2], b) for i, b in enumerate(batches)),
        # The same batches again, to the other replica, at the same time: retries race.
        *(post(replicas[(i + 1) % 2], b) for i, b in enumerate(batches)),
    )
    assert sum(r["accepted"] for r in results) == 200
    assert sum(r["duplicates"] for r in results) == 200

    async def all_processed() -> bool:
        return await db.processed() == 200

    await wait_until(all_processed, timeout=90)
    assert await db.scalar(select(func.count()).select_from(Email)) == 200
    # A claim increments attempts; an event claimed by both replicas would show 2.
    assert await db.scalar(select(func.max(WebhookEvent.attempts))) == 1
    assert await db.scalar(select(func.count()).select_from(Attachment)) == 200
