"""Worker child processes of the app: the default topology of `uvicorn app.main:app`.

Parsing a message costs far more CPU than acknowledging it; on the API's event loop a burst of
mail cut the acknowledgement rate to a tenth. So the app starts `python -m app.cli worker`
children (WORKER_PROCESSES, default 1) with its own environment and a lower CPU priority
(nice 10), restarts one that dies, and stops them with itself (SIGTERM: each drains for its
grace period and hands back the rest). A child also stops by itself when this process
disappears (SIGKILL included): it watches its parent's pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys

import structlog

from app.processing.worker import RELEASE_TIMEOUT_SECONDS, SHUTDOWN_GRACE_SECONDS

logger = structlog.get_logger("app.worker_children")

RESTART_PAUSE_SECONDS = (1.0, 30.0)
# Beside the app on the same cores, the child yields the CPU to the acknowledgements whenever
# both want it: mail then waits (durably) in the database, never Mailchimp for its 200.
CHILD_NICENESS = 10
STOP_TIMEOUT_SECONDS = SHUTDOWN_GRACE_SECONDS + RELEASE_TIMEOUT_SECONDS + 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Child:
    def __init__(self, index: int) -> None:
        self.index = index
        self.health_port = free_port()
        self.process: asyncio.subprocess.Process | None = None
        self.watcher: asyncio.Task[None] | None = None


class WorkerChildren:
    def __init__(self, count: int) -> None:
        self.children = [_Child(i) for i in range(count)]
        self._stopping = False

    @property
    def health_urls(self) -> list[str]:
        """Where each child answers /health/live and /metrics (loopback, a free port)."""
        return [f"http://127.0.0.1:{child.health_port}" for child in self.children]

    async def start(self) -> None:
        self._stopping = False
        for child in self.children:
            await self._spawn(child)
            child.watcher = asyncio.create_task(
                self._watch(child), name=f"kave-worker-child-{child.index}"
            )

    async def _spawn(self, child: _Child) -> None:
        env = {
            **os.environ,
            "WORKER_HEALTH_PORT": str(child.health_port),
            "WORKER_HEALTH_HOST": "127.0.0.1",
        }
        child.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app.cli",
            "worker",
            "--parent-pid",
            str(os.getpid()),
            "--nice",
            str(CHILD_NICENESS),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            # Its own process group: a Ctrl-C in the terminal reaches the app, which stops it.
            start_new_session=True,
        )
        logger.info("worker_child.started", index=child.index, pid=child.process.pid)

    async def _watch(self, child: _Child) -> None:
        pause = RESTART_PAUSE_SECONDS[0]
        while True:
            assert child.process is not None
            code = await child.process.wait()
            if self._stopping:
                return
            logger.error("worker_child.exited", index=child.index, code=code, restart_in=pause)
            await asyncio.sleep(pause)
            pause = min(2 * pause, RESTART_PAUSE_SECONDS[1])
            if self._stopping:
                return
            with contextlib.suppress(OSError):
                await self._spawn(child)

    async def stop(self) -> None:
        self._stopping = True
        for child in self.children:
            if child.watcher is not None:
                child.watcher.cancel()
        running = [c.process for c in self.children if c.process and c.process.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_SECONDS)
            except TimeoutError:
                logger.warning("worker_child.killed", pid=process.pid)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        await asyncio.gather(
            *(c.watcher for c in self.children if c.watcher), return_exceptions=True
        )
        logger.info("worker_children.stopped", count=len(running))
