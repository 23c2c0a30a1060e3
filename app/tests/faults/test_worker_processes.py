"""Worker processes beside an acknowledge-only API, on SQLite and on PostgreSQL: one worker
SIGKILLed while it holds claims, another SIGTERMed mid-drain, and the app's default worker child.
Every acknowledged email ends up stored once, whole."""

from __future__ import annotations

import asyncio
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from alembic.config import Config
from sqlalchemy import func, select

from alembic import command
from app.processing.models import EventStatus, WebhookEvent
from app.tests.conftest import ROOT, _clear_tables
from app.tests.faults.harness import FaultDatabase, Posters, Servers, local_blobs, make_batches
from app.tests.observability.scrape import Scrape
from app.tests.server_process import WorkerProcess
from app.worker_children import CHILD_NICENESS

pytestmark = [pytest.mark.faults, pytest.mark.slow]

BATCHES, BATCH_SIZE, POSTERS = 80, 5, 4


def _migrate(url: str) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'kave.db'}"
        # Alembic's env.py runs its own event loop: keep it off the test loop's thread.
        with ThreadPoolExecutor(1) as pool:
            await asyncio.wrap_future(pool.submit(_migrate, url))
        return url
    cluster = request.getfixturevalue("throwaway_postgres")
    if not cluster.running:
        cluster.start()
    await _clear_tables(cluster.url)
    return str(cluster.url)


async def _held_by(db: FaultDatabase, worker: WorkerProcess) -> int:
    """Events in `processing` under a lease of this worker (its owner id carries its pid)."""
    stmt = (
        select(func.count())
        .select_from(WebhookEvent)
        .where(
            WebhookEvent.status == EventStatus.PROCESSING,
            WebhookEvent.lease_owner.like(f"%:{worker.pid}:%"),
        )
    )
    return int(await db.scalar(stmt))


async def _wait_holding(db: FaultDatabase, worker: WorkerProcess, *, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = await _held_by(db, worker)
        if held:
            return held
        await asyncio.sleep(0.02)
    return 0


def _niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _autogroup_niceness(pid: int) -> int | None:
    """The nice value of the process's autogroup; None where the kernel has none."""
    autogroup = Path(f"/proc/{pid}/autogroup")
    return int(autogroup.read_text().split()[-1]) if autogroup.exists() else None


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


async def _scrape(url: str) -> Scrape:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{url}/metrics")
    assert response.status_code == 200, response.text
    return Scrape(response.text)


async def test_two_workers_one_killed_mid_drain_process_every_email_once(
    database_url: str, servers: Servers, tmp_path: Path
) -> None:
    db = FaultDatabase(database_url)
    storage = tmp_path / "blobs"
    try:
        api = await servers.start(
            name="api", database_url=database_url, storage_path=storage, PROCESSING_ENABLED="false"
        )
        a, b = await asyncio.gather(
            *(
                servers.start_worker(
                    name=f"worker-{name}", database_url=database_url, storage_path=storage
                )
                for name in ("a", "b")
            )
        )
        batches = make_batches(BATCHES, BATCH_SIZE, tag="workers")
        mails = [mail for batch in batches for mail in batch.mails]
        posters = Posters(deadline=time.monotonic() + 180)
        posting = asyncio.create_task(posters.run(batches, lambda: api.url, concurrency=POSTERS))
        # Mid-drain: while mail still comes in and worker a holds claims it has not finished.
        held_when_killed = await _wait_holding(db, a, timeout=60)
        a.kill()
        posted_when_killed = len(posters.acked)
        await posting
        statuses = await db.wait_processed(len(mails), timeout=120)
        report = await db.check_emails(mails, local_blobs(storage))
        metrics = await _scrape(b.url)
        async with httpx.AsyncClient(timeout=5) as client:
            ready = await client.get(f"{b.url}/health/ready")
        print(
            f"\n[fault: two workers, {database_url.split(':')[0]}] emails={len(mails)} "
            f"held by a when killed={held_when_killed} batches acked by then="
            f"{posted_when_killed}/{len(batches)} statuses={statuses} "
            f"processed by b={metrics.total('kave_events_processed_total'):.0f} "
            f"attempts max={await db.max_attempts()} {report}"
        )
        assert held_when_killed > 0, "worker a never held a claim to die with"
        assert posted_when_killed < len(batches), "worker a was killed after the posting ended"
        assert posters.acked == {batch.index for batch in batches}
        assert set(posters.statuses()) == {"200"}
        assert posters.accepted() == len(mails)
        assert statuses == {"processed": len(mails)}, statuses
        assert report.ok, str(report)
        assert report.rows == len(mails)
        # What a held when it died was processed by b once its lease ran out.
        assert metrics.total("kave_events_processed_total") >= held_when_killed
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "storage": "ok"}
    finally:
        await db.close()


async def test_sigterm_drains_a_worker_and_hands_back_its_claims(
    database_url: str, servers: Servers, tmp_path: Path
) -> None:
    db = FaultDatabase(database_url)
    storage = tmp_path / "blobs"
    try:
        api = await servers.start(
            name="api", database_url=database_url, storage_path=storage, PROCESSING_ENABLED="false"
        )
        # A long lease: only the hand-back on SIGTERM can free its claims in time.
        first = await servers.start_worker(
            name="first",
            database_url=database_url,
            storage_path=storage,
            EVENT_LEASE_SECONDS="600",
            LOG_LEVEL="INFO",
        )
        batches = make_batches(40, BATCH_SIZE, tag="drain")
        mails = [mail for batch in batches for mail in batch.mails]
        posters = Posters(deadline=time.monotonic() + 120)
        posting = asyncio.create_task(posters.run(batches, lambda: api.url, concurrency=POSTERS))
        assert await _wait_holding(db, first, timeout=60) > 0
        code = await asyncio.to_thread(first.terminate)
        left_held = await _held_by(db, first)
        await posting
        second = await servers.start_worker(
            name="second", database_url=database_url, storage_path=storage
        )
        statuses = await db.wait_processed(len(mails), timeout=120)
        report = await db.check_emails(mails, local_blobs(storage))
        log = first.log_path.read_text()
        assert code == 0
        assert left_held == 0
        assert '"worker.process.stopping"' in log and '"worker.process.stopped"' in log
        assert statuses == {"processed": len(mails)}, statuses
        assert report.ok, str(report)
        assert second.process is not None and second.process.poll() is None
    finally:
        await db.close()


async def test_the_app_processes_in_a_worker_child_and_stops_it_with_itself(
    database_url: str, servers: Servers, tmp_path: Path
) -> None:
    db = FaultDatabase(database_url)
    storage = tmp_path / "blobs"
    try:
        # The default topology: `uvicorn app.main:app` with WORKER_PROCESSES=1.
        api = await servers.start(
            name="api", database_url=database_url, storage_path=storage, WORKER_PROCESSES="1"
        )
        assert api.process is not None
        child_pids = _children(api.process.pid)
        batches = make_batches(20, BATCH_SIZE, tag="child")
        mails = [mail for batch in batches for mail in batch.mails]
        posters = Posters(deadline=time.monotonic() + 120)
        await posters.run(batches, lambda: api.url, concurrency=POSTERS)
        statuses = await db.wait_processed(len(mails), timeout=120)
        report = await db.check_emails(mails, local_blobs(storage))
        # It yields the CPU to the app: niced, and so is its session's autogroup (Linux shares
        # the CPU between autogroups before any nice value counts).
        assert _niceness(child_pids[0]) == CHILD_NICENESS
        assert _autogroup_niceness(child_pids[0]) in (None, CHILD_NICENESS)
        # One scrape of the app shows what its child processed, labelled as the child's.
        metrics = await _scrape(api.url)
        code = await asyncio.to_thread(api.terminate)
        assert len(child_pids) == 1
        assert metrics.total("kave_events_processed_total", process="worker-0") == len(mails)
        assert metrics.total("kave_events_stored_total") == len(mails)
        assert statuses == {"processed": len(mails)}, statuses
        assert report.ok, str(report)
        # uvicorn re-raises the SIGTERM once it has shut down cleanly.
        assert code in (0, -signal.SIGTERM), code
        assert not _alive(child_pids[0]), "the worker child outlived the app"
    finally:
        await db.close()
