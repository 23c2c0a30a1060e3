"""PostgreSQL dies mid-run (`pg_ctl stop -m immediate`) and comes back.

While it is down the webhook must answer 503 `service_unavailable`, never 200 (nothing can be
stored); the process stays up and live. After it returns, everything acknowledged is processed.
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

import httpx
import pytest

from app.tests.faults.harness import (
    Attempt,
    FaultDatabase,
    Posters,
    Servers,
    local_blobs,
    make_batches,
)
from app.tests.faults.harness import scrape as scrape_server
from app.tests.faults.postgres import ThrowawayPostgres

pytestmark = [pytest.mark.faults, pytest.mark.slow]

OUTAGE_SECONDS = 8.0
BATCHES, BATCH_SIZE = 30, 10


async def test_database_outage_answers_503_and_loses_nothing(
    throwaway_postgres: ThrowawayPostgres, fault_db: FaultDatabase, servers: Servers, tmp_path: Path
) -> None:
    storage = tmp_path / "blobs"
    server = await servers.start(
        name="db-outage", database_url=throwaway_postgres.url, storage_path=storage
    )
    assert server.process is not None
    pid = server.process.pid
    batches = make_batches(BATCHES, BATCH_SIZE, tag="db-outage")
    mails = [mail for batch in batches for mail in batch.mails]

    posters = Posters(deadline=time.monotonic() + 120)
    posting = asyncio.create_task(
        posters.run(batches, lambda: server.url, concurrency=2, pace=(0.2, 0.5))
    )
    await asyncio.sleep(1.5)
    acked_before = len(posters.acked)
    await asyncio.to_thread(throwaway_postgres.stop, "immediate")
    down_from = time.monotonic()

    live, ready, backlog_up, unprocessed = [], [], [], []
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        while time.monotonic() - down_from < OUTAGE_SECONDS:
            live.append((await client.get("/health/live")).status_code)
            ready.append((await client.get("/health/ready")).status_code)
            metrics = await scrape_server(server)
            backlog_up.append(metrics.value("kave_events_backlog_up"))
            unprocessed.append(metrics.value("kave_events_unprocessed"))
            await asyncio.sleep(1.0)
    down_until = time.monotonic()
    await asyncio.to_thread(throwaway_postgres.start)
    await asyncio.wait_for(posting, timeout=120)

    statuses = await fault_db.wait_processed(len(mails), timeout=90)
    report = await fault_db.check_emails(mails, local_blobs(storage))
    metrics = await scrape_server(server)
    during = [a for a in posters.attempts if a.started >= down_from and a.ended <= down_until]
    first_200_after = min(
        (
            a.ended - down_until
            for a in posters.attempts
            if a.status == 200 and a.started > down_until
        ),
        default=math.nan,
    )
    print(
        f"\n[fault: database outage] outage={OUTAGE_SECONDS:.0f}s events={len(mails)} "
        f"batches acked before={acked_before} answers while down={dict(_count(during))} "
        f"answers overall={dict(posters.statuses())} first 200 {first_200_after:.2f}s after "
        f"restart; same pid={server.process.pid == pid} live={set(live)} ready={set(ready)} "
        f"backlog_up while down={set(backlog_up)} statuses={statuses} "
        f"lost={len(report.missing)} duplicates={len(report.duplicated)} "
        f"max attempts={await fault_db.max_attempts()} | {metrics.summary()}"
    )
    assert during, "no delivery was attempted while the database was down"
    assert all(a.status == 503 and a.code == "service_unavailable" for a in during), during
    assert {a.status for a in posters.attempts} <= {200, 503}, posters.statuses()
    assert server.process.poll() is None and server.process.pid == pid
    assert set(live) == {200}
    assert set(ready) == {503}
    assert set(backlog_up) == {0.0}
    assert all(math.isnan(v) for v in unprocessed)
    assert posters.acked == {b.index for b in batches}
    assert statuses == {"processed": len(mails)}, statuses
    assert report.ok, str(report)


def _count(attempts: list[Attempt]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for attempt in attempts:
        key = f"{attempt.status} {attempt.code}"
        counts[key] = counts.get(key, 0) + 1
    return counts
