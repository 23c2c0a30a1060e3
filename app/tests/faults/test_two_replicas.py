"""Two server processes on one database under load, the same batches posted to both at once
(retries racing): every event is claimed and processed exactly once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, tuple_

from app.emails.models import Attachment
from app.tests.faults.harness import FaultDatabase, Posters, Servers, local_blobs, make_batches
from app.tests.faults.harness import scrape as scrape_server
from app.tests.faults.postgres import ThrowawayPostgres

pytestmark = [pytest.mark.faults, pytest.mark.slow]

SHARED_BATCHES, SOLO_BATCHES, BATCH_SIZE, POSTERS_PER_REPLICA = 30, 20, 10, 3


async def test_two_replicas_process_every_event_exactly_once(
    throwaway_postgres: ThrowawayPostgres, fault_db: FaultDatabase, servers: Servers, tmp_path: Path
) -> None:
    storage = tmp_path / "blobs"
    # A long lease: any second claim would have to be a double claim, not an expired lease.
    a, b = await asyncio.gather(
        *(
            servers.start(
                name=f"replica-{name}",
                database_url=throwaway_postgres.url,
                storage_path=storage,
                EVENT_LEASE_SECONDS="60",
            )
            for name in ("a", "b")
        )
    )
    shared = make_batches(SHARED_BATCHES, BATCH_SIZE, tag="replica-shared")
    solo = make_batches(SOLO_BATCHES, BATCH_SIZE, tag="replica-solo")
    mails = [mail for batch in [*shared, *solo] for mail in batch.mails]

    to_a = Posters(deadline=time.monotonic() + 120)
    to_b = Posters(deadline=time.monotonic() + 120)
    # Both replicas get every shared batch, concurrently; the solo ones are split between them.
    await asyncio.gather(
        to_a.run([*shared, *solo[::2]], lambda: a.url, concurrency=POSTERS_PER_REPLICA),
        to_b.run([*shared, *solo[1::2]], lambda: b.url, concurrency=POSTERS_PER_REPLICA),
    )
    statuses = await fault_db.wait_processed(len(mails), timeout=120)
    report = await fault_db.check_emails(mails, local_blobs(storage))
    attachment_rows = await fault_db.scalar(select(func.count()).select_from(Attachment))
    distinct_positions = await fault_db.scalar(
        select(func.count(func.distinct(tuple_(Attachment.email_id, Attachment.position))))
    )
    max_attempts = await fault_db.max_attempts()
    metrics_a, metrics_b = await scrape_server(a), await scrape_server(b)
    stored = [m.total("kave_events_stored_total") for m in (metrics_a, metrics_b)]
    processed = [m.total("kave_events_processed_total") for m in (metrics_a, metrics_b)]
    lease_lost = sum(
        m.total("kave_event_tasks_total", outcome="lease_lost") for m in (metrics_a, metrics_b)
    )
    print(
        f"\n[fault: two replicas] events={len(mails)} posts={len(to_a.attempts)}+"
        f"{len(to_b.attempts)} accepted={to_a.accepted() + to_b.accepted()} "
        f"duplicates={to_a.duplicates() + to_b.duplicates()} stored by a/b={stored} "
        f"processed by a/b={processed} lease_lost={lease_lost:.0f} statuses={statuses} "
        f"emails={report.rows} lost={len(report.missing)} duplicated={len(report.duplicated)} "
        f"attachments={attachment_rows} (distinct email,position={distinct_positions}) "
        f"max attempts={max_attempts}"
    )
    assert to_a.acked == {batch.index for batch in [*shared, *solo[::2]]}
    assert to_b.acked == {batch.index for batch in [*shared, *solo[1::2]]}
    assert set(to_a.statuses()) == set(to_b.statuses()) == {"200"}
    assert to_a.accepted() + to_b.accepted() == len(mails)
    assert to_a.duplicates() + to_b.duplicates() == SHARED_BATCHES * BATCH_SIZE
    assert sum(stored) == len(mails)
    assert sum(processed) == len(mails)
    assert statuses == {"processed": len(mails)}, statuses
    # A claim increments attempts: an event claimed by both replicas would show 2.
    assert max_attempts == 1
    assert lease_lost == 0
    assert report.ok, str(report)
    assert report.rows == len(mails)
    assert attachment_rows == distinct_positions == len(mails)
    async with httpx.AsyncClient(timeout=5) as client:
        for server in (a, b):
            assert (await client.get(f"{server.url}/health/ready")).status_code == 200
