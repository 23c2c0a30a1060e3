"""S3 goes away for 30 s mid-run and comes back.

Acknowledgement needs only the database, so every batch is still answered 200 during the
outage; processing fails with StorageUnavailable and is retried with backoff; readiness says
503 while S3 is down. Afterwards every event is processed and every blob is in the bucket.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from app.tests.faults.conftest import MotoOnFixedPort
from app.tests.faults.harness import FaultDatabase, Posters, Servers, make_batches, s3_blobs
from app.tests.faults.harness import scrape as scrape_server
from app.tests.faults.postgres import ThrowawayPostgres
from app.tests.fixtures.s3 import unique_bucket_name

pytestmark = [pytest.mark.faults, pytest.mark.slow]

OUTAGE_SECONDS = 30.0
BATCHES, BATCH_SIZE = 15, 10
# A retry budget that outlasts the outage: the delays between 20 attempts (1, 2, 4, then 4 s
# ceilings, half of each jitter) add up to at least ~35 s. With the test defaults (0.1 s, cap
# 1 s, 8 attempts) the events would reach `failed` within seconds.
RETRY_ENV = {"RETRY_BASE_SECONDS": "1", "RETRY_MAX_SECONDS": "4", "MAX_ATTEMPTS": "20"}


async def test_storage_outage_is_retried_and_loses_nothing(
    throwaway_postgres: ThrowawayPostgres,
    fault_db: FaultDatabase,
    servers: Servers,
    moto_on_fixed_port: MotoOnFixedPort,
    tmp_path: Path,
) -> None:
    moto = moto_on_fixed_port
    bucket = unique_bucket_name()
    server = await servers.start(
        name="storage-outage",
        database_url=throwaway_postgres.url,
        storage_path=tmp_path / "unused",
        STORAGE_BACKEND="s3",
        S3_ENDPOINT_URL=moto.url,
        S3_BUCKET=bucket,
        S3_REGION="us-east-1",
        S3_ACCESS_KEY_ID="testing",
        S3_SECRET_ACCESS_KEY="testing",
        **RETRY_ENV,
    )
    batches = make_batches(BATCHES, BATCH_SIZE, tag="s3-outage")
    mails = [mail for batch in batches for mail in batch.mails]
    before_outage, during_outage = batches[:5], batches[5:]

    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        assert (await client.get("/health/ready")).status_code == 200
        warmup = Posters(deadline=time.monotonic() + 60)
        await warmup.run(before_outage, lambda: server.url, concurrency=2)
        processed_before = await fault_db.processed()

        await asyncio.to_thread(moto.stop)
        outage_began = time.monotonic()
        posters = Posters(deadline=time.monotonic() + 60)
        posting = asyncio.create_task(
            posters.run(during_outage, lambda: server.url, concurrency=2, pace=(0.2, 0.6))
        )
        ready_during: list[tuple[int, str | None]] = []
        while time.monotonic() - outage_began < OUTAGE_SECONDS:
            response = await client.get("/health/ready")
            checks = response.json().get("error", {}).get("details", [])
            storage = next((c["status"] for c in checks if c.get("check") == "storage"), None)
            ready_during.append((response.status_code, storage))
            await asyncio.sleep(1.0)
        await asyncio.wait_for(posting, timeout=60)
        processed_during = await fault_db.processed()
        mid = await scrape_server(server)

        await asyncio.to_thread(moto.start)
        restored = time.monotonic()
        ready_after = None
        while time.monotonic() - restored < 30:
            ready_after = (await client.get("/health/ready")).status_code
            if ready_after == 200:
                break
            await asyncio.sleep(0.5)

    statuses = await fault_db.wait_processed(len(mails), timeout=90)
    recovered_in = time.monotonic() - restored
    async with s3_blobs(moto.url, bucket) as blobs:
        report = await fault_db.check_emails(mails, blobs)
    metrics = await scrape_server(server)
    retries = metrics.total("kave_event_tasks_total", outcome="retry")
    print(
        f"\n[fault: storage outage] outage={OUTAGE_SECONDS:.0f}s events={len(mails)} "
        f"processed before/at end of outage={processed_before}/{processed_during} "
        f"acks during outage={dict(posters.statuses())} "
        f"readiness during={sorted(set(ready_during))} after={ready_after} "
        f"all processed {recovered_in:.1f}s after S3 returned; statuses={statuses} "
        f"retries during outage={mid.total('kave_event_tasks_total', outcome='retry'):.0f} "
        f"max attempts of one event={await fault_db.max_attempts()} "
        f"lost={len(report.missing)} duplicates={len(report.duplicated)} "
        f"broken={len(report.broken)} | {metrics.summary()}"
    )
    assert warmup.acked == {b.index for b in before_outage}
    # Acknowledgement needs the database only: S3 being down never costs a 200.
    assert posters.acked == {b.index for b in during_outage}
    assert set(posters.statuses()) == {"200"}, posters.statuses()
    assert (503, "unavailable") in ready_during, ready_during
    assert 200 not in {status for status, _ in ready_during}
    assert ready_after == 200
    assert processed_during < len(mails), "nothing was left to process during the outage"
    assert retries > 0
    assert metrics.total("kave_events_failed_total") == 0
    assert statuses == {"processed": len(mails)}, statuses
    assert report.ok, str(report)
