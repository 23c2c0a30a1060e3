"""`kave worker` (`python -m app.cli worker`): a process that only processes events.

It claims what acknowledge-only API processes stored (woken by NOTIFY on PostgreSQL, polling
on SQLite), runs the tasks, recovers expired leases and purges old payloads. Any number may
share one database: claims are `FOR UPDATE SKIP LOCKED`, and every outcome is fenced by the
lease. SIGTERM (or SIGINT) drains: no new claims, running tasks get their grace period, the
rest is handed back at once. Liveness, readiness and metrics on WORKER_HEALTH_PORT.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal

import structlog
import typer

from app.core.config import Settings, load_settings
from app.core.logging import configure_logging
from app.worker_health import HealthServer
from app.worker_runtime import build_processing_runtime, open_stores

logger = structlog.get_logger("app.cli.worker")

PARENT_CHECK_SECONDS = 1.0
AUTOGROUP = "/proc/self/autogroup"


async def _parent_gone(parent_pid: int) -> None:
    """Returns once the process that started us is gone (we were re-parented)."""
    while os.getppid() == parent_pid:  # noqa: ASYNC110 (no event tells of a parent's death)
        await asyncio.sleep(PARENT_CHECK_SECONDS)


def lower_priority(niceness: int) -> None:
    """Nice this process, and on Linux its autogroup too.

    The app starts its child in a session of its own (so a Ctrl-C reaches only the app), and
    Linux's scheduler (autogroups, on by default) shares the CPU fairly between sessions,
    honouring a nice value only within one. Niced alone, the child took 0.81 of a core beside
    the app's 0.53 under a burst. So when this process leads its session (as the app's child
    does), the session's autogroup is niced as well.
    """
    os.nice(niceness)
    if os.getsid(0) != os.getpid():
        return  # the session (and its autogroup) is shared, e.g. the terminal's: leave it
    with contextlib.suppress(OSError), open(AUTOGROUP, "w") as handle:
        handle.write(str(niceness))


async def run_worker(settings: Settings, *, parent_pid: int | None = None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with open_stores(settings) as stores:
        runtime = build_processing_runtime(settings, stores, standalone=True)
        health = HealthServer(
            settings, stores, port=settings.worker_health_port, host=settings.worker_health_host
        )
        health.worker_running = lambda: runtime.worker.running
        await health.start()
        await runtime.start()
        # As in the app: the objects alive after start-up stay out of every collection.
        gc.collect()
        gc.freeze()
        logger.info(
            "worker.process.started",
            pid=os.getpid(),
            database=stores.engine.url.get_backend_name(),
            health_port=settings.worker_health_port or None,
        )
        watch = asyncio.create_task(_parent_gone(parent_pid)) if parent_pid else None
        waiting = asyncio.create_task(stop.wait())
        await asyncio.wait([t for t in (watch, waiting) if t], return_when="FIRST_COMPLETED")
        for task in (watch, waiting):
            if task is not None:
                task.cancel()
        reason = "parent_gone" if watch is not None and watch.done() else "signal"
        logger.info("worker.process.stopping", reason=reason)
        try:
            await runtime.stop()
        finally:
            await health.stop()
    logger.info("worker.process.stopped")


def worker(
    parent_pid: int | None = typer.Option(
        None, "--parent-pid", hidden=True, help="stop when this process is gone (the app's child)"
    ),
    nice: int = typer.Option(0, "--nice", hidden=True, help="lower this process's priority"),
) -> None:
    """Process events only (no API): claims, tasks, recovery, retention. Scale by running more."""
    if nice:
        lower_priority(nice)
    settings = load_settings()
    configure_logging(settings)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_worker(settings, parent_pid=parent_pid))
