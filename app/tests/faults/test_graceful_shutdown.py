"""SIGTERM while events are mid-processing: the process exits cleanly within the grace period,
nothing half-written is marked processed, and a restarted server finishes the rest."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from app.processing.worker import RELEASE_TIMEOUT_SECONDS, SHUTDOWN_GRACE_SECONDS
from app.tests.faults.conftest import MotoOnFixedPort
from app.tests.faults.harness import (
    FaultDatabase,
    Posters,
    Servers,
    local_blobs,
    log_events,
    make_batches,
    s3_blobs,
)
from app.tests.faults.harness import scrape as scrape_server
from app.tests.faults.postgres import ThrowawayPostgres
from app.tests.faults.proxy import BlackholeProxy
from app.tests.fixtures.s3 import unique_bucket_name

pytestmark = [pytest.mark.faults, pytest.mark.slow]

BATCHES, BATCH_SIZE, ATTACHMENT_BYTES = 8, 2, 2 * 1024 * 1024
# uvicorn's own shutdown steps and the release of claims, on top of the worker's grace period.
SHUTDOWN_SLACK_SECONDS = 5.0
# With the database hung: the grace period, the bounded release of claims, SQLAlchemy's 2 s
# attempts to close abandoned connections, and a (bounded) engine dispose.
HUNG_DATABASE_EXIT_BOUND = SHUTDOWN_GRACE_SECONDS + RELEASE_TIMEOUT_SECONDS + 12.0


async def test_sigterm_mid_processing_exits_cleanly_and_loses_nothing(
    throwaway_postgres: ThrowawayPostgres, fault_db: FaultDatabase, servers: Servers, tmp_path: Path
) -> None:
    storage = tmp_path / "blobs"
    # The backlog is taken in by a server that does not process, then worked off by one with a
    # single consumer and attachments of a few MB, slow enough to be caught mid-way. It claims
    # through the recovery loop, so SIGTERM also finds claimed events not started yet.
    intake = await servers.start(
        name="sigterm-intake",
        database_url=throwaway_postgres.url,
        storage_path=storage,
        PROCESSING_ENABLED="false",
    )
    batches = make_batches(BATCHES, BATCH_SIZE, tag="sigterm", attachment_bytes=ATTACHMENT_BYTES)
    mails = [mail for batch in batches for mail in batch.mails]
    posters = Posters(deadline=time.monotonic() + 90)
    await posters.run(batches, lambda: intake.url, concurrency=2)
    assert posters.acked == {batch.index for batch in batches}
    await asyncio.to_thread(intake.terminate)

    # Batches of 4 (of 16 events): a SIGTERM after the first batch is mid-way through the rest.
    env = {"WORKER_CONCURRENCY": "1", "WORKER_BATCH_SIZE": "4", "LOG_LEVEL": "INFO"}
    first = await servers.start(
        name="sigterm-first", database_url=throwaway_postgres.url, storage_path=storage, **env
    )
    processed_at_sigterm = 0
    for _ in range(600):  # up to ~30 s
        processed_at_sigterm = await fault_db.processed()
        if processed_at_sigterm >= 3:
            break
        await asyncio.sleep(0.05)
    before = await scrape_server(first)
    processed_at_sigterm = await fault_db.processed()
    sent = time.monotonic()
    code = await asyncio.to_thread(first.terminate, SHUTDOWN_GRACE_SECONDS + 30)
    took = time.monotonic() - sent
    at_exit = await fault_db.statuses()
    mid_report = await fault_db.check_emails(mails, local_blobs(storage), only_processed=True)
    logged = {str(e.get("event")): e for e in log_events(tmp_path / "sigterm-first.log")}
    released = logged.get("worker.released", {}).get("events", 0)

    second = await servers.start(
        name="sigterm-second", database_url=throwaway_postgres.url, storage_path=storage, **env
    )
    statuses = await fault_db.wait_processed(len(mails), timeout=120)
    report = await fault_db.check_emails(mails, local_blobs(storage))
    after = await scrape_server(second)
    print(
        f"\n[fault: graceful shutdown] events={len(mails)} x {ATTACHMENT_BYTES >> 20} MB "
        f"processed at SIGTERM={processed_at_sigterm} exit code={code} after {took:.2f}s "
        f"(grace {SHUTDOWN_GRACE_SECONDS:.0f}s) statuses at exit={at_exit} "
        f"finished during grace={at_exit.get('processed', 0) - processed_at_sigterm} "
        f"released={released} processed rows whole={mid_report.ok} "
        f"after restart={statuses} lost={len(report.missing)} "
        f"duplicates={len(report.duplicated)} | before SIGTERM: {before.summary()} | "
        f"restarted: {after.summary()}"
    )
    assert processed_at_sigterm < len(mails), "processing was over before the SIGTERM"
    # uvicorn re-raises the SIGTERM it handled once its graceful shutdown is done, so outside a
    # container's PID 1 the status is "terminated by SIGTERM"; the log shows the clean stop.
    assert code in (0, -signal.SIGTERM), code
    assert "worker.stopped" in logged and "app.stopped" in logged, sorted(logged)
    assert took < SHUTDOWN_GRACE_SECONDS + SHUTDOWN_SLACK_SECONDS
    assert set(at_exit) <= {"received", "processing", "processed"}, at_exit
    assert at_exit.get("processing", 0) == 0, "claims were not handed back on shutdown"
    assert mid_report.ok, str(mid_report)
    assert statuses == {"processed": len(mails)}, statuses
    assert report.ok, str(report)
    assert await fault_db.max_attempts() <= 2


async def test_sigterm_with_storage_hung_gives_up_after_the_grace_period_and_hands_back(
    throwaway_postgres: ThrowawayPostgres,
    fault_db: FaultDatabase,
    servers: Servers,
    moto_on_fixed_port: MotoOnFixedPort,
    tmp_path: Path,
) -> None:
    """The in-flight upload never returns: shutdown must not wait for it past the grace period,
    and the event it was processing must go back to `received`, with nothing written."""
    proxy = BlackholeProxy(moto_on_fixed_port.port)
    await proxy.start()
    try:
        bucket = unique_bucket_name()
        env = {
            "WORKER_CONCURRENCY": "1",
            "LOG_LEVEL": "INFO",
            "STORAGE_BACKEND": "s3",
            "S3_ENDPOINT_URL": proxy.url,
            "S3_BUCKET": bucket,
            "S3_REGION": "us-east-1",
            "S3_ACCESS_KEY_ID": "testing",
            "S3_SECRET_ACCESS_KEY": "testing",
        }
        first = await servers.start(
            name="hung-first", database_url=throwaway_postgres.url, storage_path=tmp_path, **env
        )
        proxy.hanging = True
        batches = make_batches(3, 2, tag="hung", attachment_bytes=64 * 1024)
        mails = [mail for batch in batches for mail in batch.mails]
        posters = Posters(deadline=time.monotonic() + 60)
        await posters.run(batches, lambda: first.url, concurrency=1)
        assert posters.acked == {batch.index for batch in batches}
        for _ in range(200):  # up to ~10 s: wait for the consumer to be stuck in an upload
            if (await fault_db.statuses()).get("processing"):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)

        sent = time.monotonic()
        code = await asyncio.to_thread(first.terminate, SHUTDOWN_GRACE_SECONDS + 30)
        took = time.monotonic() - sent
        at_exit = await fault_db.statuses()
        stored_rows = (await fault_db.check_emails(mails, _no_blobs, only_processed=True)).rows
        logged = {str(e.get("event")): e for e in log_events(tmp_path / "hung-first.log")}
        released = logged.get("worker.released", {}).get("events", 0)

        proxy.hanging = False
        second = await servers.start(
            name="hung-second", database_url=throwaway_postgres.url, storage_path=tmp_path, **env
        )
        statuses = await fault_db.wait_processed(len(mails), timeout=60)
        async with s3_blobs(moto_on_fixed_port.url, bucket) as blobs:
            report = await fault_db.check_emails(mails, blobs)
        after = await scrape_server(second)
    finally:
        await proxy.close()
    print(
        f"\n[fault: graceful shutdown, storage hung] events={len(mails)} exit code={code} "
        f"after {took:.2f}s (grace {SHUTDOWN_GRACE_SECONDS:.0f}s) statuses at exit={at_exit} "
        f"email rows at exit={stored_rows} released={released} "
        f"task cancelled={'event.task.cancelled' in logged} after restart={statuses} "
        f"lost={len(report.missing)} duplicates={len(report.duplicated)} | {after.summary()}"
    )
    assert code in (0, -signal.SIGTERM), code
    assert "worker.stopped" in logged and "app.stopped" in logged, sorted(logged)
    assert "event.task.cancelled" in logged
    assert SHUTDOWN_GRACE_SECONDS - 1 < took < SHUTDOWN_GRACE_SECONDS + SHUTDOWN_SLACK_SECONDS
    assert at_exit == {"received": len(mails)}, at_exit
    assert released >= 1
    assert stored_rows == 0
    assert statuses == {"processed": len(mails)}, statuses
    assert report.ok, str(report)


async def _no_blobs(key: str) -> bytes | None:
    return None


async def test_sigterm_with_database_hung_still_exits(
    throwaway_postgres: ThrowawayPostgres, fault_db: FaultDatabase, servers: Servers, tmp_path: Path
) -> None:
    """The database stops answering (a partition, not a refusal) while events are in flight:
    the shutdown gives up on it instead of hanging, and the claims it could not hand back are
    re-claimed by the next server once their lease runs out."""
    storage = tmp_path / "blobs"
    proxy = BlackholeProxy(throwaway_postgres.port)
    await proxy.start()
    try:
        first = await servers.start(
            name="db-hung-first",
            database_url=throwaway_postgres.url.replace(
                f":{throwaway_postgres.port}/", f":{proxy.port}/"
            ),
            storage_path=storage,
            LOG_LEVEL="INFO",
        )
        batches = make_batches(2, 10, tag="db-hung", attachment_bytes=4096)
        mails = [mail for batch in batches for mail in batch.mails]
        posters = Posters(deadline=time.monotonic() + 60)
        await posters.run(batches, lambda: first.url, concurrency=2)
        assert posters.acked == {batch.index for batch in batches}
        # A burst of requests leaves idle connections in the pool, as on any busy server.
        async with httpx.AsyncClient(base_url=first.url, timeout=10) as client:
            burst = await asyncio.gather(*(client.get("/health/ready") for _ in range(12)))
        assert {response.status_code for response in burst} == {200}
        proxy.hanging = True
        await asyncio.sleep(0.5)
        sent = time.monotonic()
        code: int | None = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            code = await asyncio.to_thread(first.terminate, HUNG_DATABASE_EXIT_BOUND)
        took = time.monotonic() - sent
    finally:
        # Dropping the swallowed connections ends their server sessions and the row locks of
        # any transaction they had open (a real partition would hold them until TCP gives up).
        await proxy.close()
    if code is None:  # still hanging: it can finish now that its connections are gone
        assert first.process is not None
        code = await asyncio.to_thread(first.process.wait, 30)
    logged = {str(e.get("event")): e for e in log_events(tmp_path / "db-hung-first.log")}
    at_exit = await fault_db.statuses()
    mid_report = await fault_db.check_emails(mails, local_blobs(storage), only_processed=True)

    second = await servers.start(
        name="db-hung-second", database_url=throwaway_postgres.url, storage_path=storage
    )
    statuses = await fault_db.wait_processed(len(mails), timeout=60)
    report = await fault_db.check_emails(mails, local_blobs(storage))
    after = await scrape_server(second)
    print(
        f"\n[fault: graceful shutdown, database hung] events={len(mails)} exit code={code} "
        f"{'still running' if took >= HUNG_DATABASE_EXIT_BOUND else 'exited'} after "
        f"{took:.2f}s (grace {SHUTDOWN_GRACE_SECONDS:.0f}s + release "
        f"{RELEASE_TIMEOUT_SECONDS:.0f}s) release failed={'worker.release_failed' in logged} "
        f"statuses at exit={at_exit} after restart={statuses} lost={len(report.missing)} "
        f"duplicates={len(report.duplicated)} | {after.summary()}"
    )
    assert code in (0, -signal.SIGTERM), code
    assert "worker.stopped" in logged, sorted(logged)
    assert mid_report.ok, str(mid_report)
    assert statuses == {"processed": len(mails)}, statuses
    assert report.ok, str(report)
    # The worker's release and the engine's dispose are both bounded: no hang on SIGTERM.
    assert took < HUNG_DATABASE_EXIT_BOUND, f"shutdown took {took:.0f}s"
