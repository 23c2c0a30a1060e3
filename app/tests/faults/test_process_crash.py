"""SIGKILL the server again and again while 1,000 emails are posted and processed.

Posters retry like Mailchimp (a connection error or any non-200 means "not delivered"), so a
batch whose 200 was lost in a crash comes back as duplicates. Afterwards every acknowledged
email must be stored exactly once, with its attachment, and the blobs must hash right.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path

import pytest

from app.tests.faults.harness import FaultDatabase, Posters, Servers, local_blobs, make_batches
from app.tests.faults.harness import scrape as scrape_server
from app.tests.faults.postgres import ThrowawayPostgres
from app.tests.server_process import ServerProcess

pytestmark = [pytest.mark.faults, pytest.mark.slow]

BATCHES, BATCH_SIZE, POSTERS, KILLS = 100, 10, 4, 5


async def test_sigkill_at_random_points_loses_and_duplicates_nothing(
    throwaway_postgres: ThrowawayPostgres, fault_db: FaultDatabase, servers: Servers, tmp_path: Path
) -> None:
    seed = int(os.environ.get("KAVE_FAULTS_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    storage = tmp_path / "blobs"
    batches = make_batches(BATCHES, BATCH_SIZE, tag="crash")
    mails = [mail for batch in batches for mail in batch.mails]

    async def start(generation: int) -> ServerProcess:
        return await servers.start(
            name=f"crash-{generation}", database_url=throwaway_postgres.url, storage_path=storage
        )

    current = await start(0)
    posters = Posters(deadline=time.monotonic() + 150)
    posting = asyncio.create_task(
        posters.run(batches, lambda: current.url, concurrency=POSTERS, pace=(0.05, 0.3))
    )
    kills: list[tuple[float, int, int]] = []  # (seconds in, batches acknowledged, processed)
    began = time.monotonic()
    for generation in range(1, KILLS + 1):
        await asyncio.sleep(rng.uniform(0.5, 2.5))
        await asyncio.to_thread(current.kill)
        kills.append((time.monotonic() - began, len(posters.acked), await fault_db.processed()))
        current = await start(generation)
    await asyncio.wait_for(posting, timeout=180)

    statuses = await fault_db.wait_processed(len(mails), timeout=120)
    report = await fault_db.check_emails(mails, local_blobs(storage))
    metrics = await scrape_server(current)
    # A write interrupted by SIGKILL leaves its temporary file behind (never a partial blob).
    leftovers = sum(1 for _ in storage.rglob(".tmp-*"))
    acked = sum(len(batches[i].mails) for i in posters.acked)
    print(
        f"\n[fault: process crash] seed={seed} kills survived={len(kills)} "
        f"events posted={len(mails)} post attempts={len(posters.attempts)} "
        f"acknowledged={acked} lost={len(report.missing)} duplicates={len(report.duplicated)} "
        f"re-deliveries answered as duplicates={posters.duplicates()} "
        f"statuses={statuses} max attempts={await fault_db.max_attempts()} "
        f"answers={dict(posters.statuses())} kills at (s, acked batches, processed)={kills} "
        f"temp files left by kills={leftovers} "
        f"| last process: {metrics.summary()}"
    )
    assert len(kills) == KILLS
    assert posters.acked == {batch.index for batch in batches}, "posting gave up"
    assert statuses == {"processed": len(mails)}, statuses
    assert report.ok, str(report)
    assert report.rows == len(mails)
