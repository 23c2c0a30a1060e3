"""How an acknowledge-only process wakes the worker processes: PostgreSQL LISTEN/NOTIFY.

After the ingest commit the webhook calls `Notifier.submit`; one `NOTIFY` (coalesced: at most
one in flight, whatever the request rate) goes out on a pooled connection, off the response
path. Each worker process holds one `LISTEN` connection and claims at once when told. A lost
notification costs only latency: workers also poll (`WORKER_POLL_SECONDS` while they have no
listener, SQLite always; the recovery interval otherwise), and claims stay `SKIP LOCKED`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

logger = structlog.get_logger("app.processing.wakeups")

CHANNEL = "kave_events"
RECONNECT_SECONDS = (0.5, 10.0)  # first and longest pause between listener reconnects
CONNECT_TIMEOUT_SECONDS = 10.0


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


class Notifier:
    """The hint sink of an acknowledge-only process: new ids become one NOTIFY."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.enabled = is_postgres(str(engine.url))
        self._pending = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._run(), name="kave-notifier")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def submit(self, event_ids: Iterable[uuid.UUID]) -> None:
        if self._task is not None and any(True for _ in event_ids):
            self._pending.set()

    async def _run(self) -> None:
        while True:
            await self._pending.wait()
            self._pending.clear()  # what arrives while this NOTIFY runs gets the next one
            try:
                async with self.engine.connect() as connection:
                    await connection.execute(text(f"NOTIFY {CHANNEL}"))
            except Exception as exc:  # noqa: BLE001 (workers poll as well; only latency is lost)
                logger.warning("wakeups.notify_failed", exc_type=type(exc).__name__)
                await asyncio.sleep(RECONNECT_SECONDS[0])


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    """One LISTEN connection per worker process; calls `wake` on every notification.

    `connected` says whether notifications can arrive: the worker polls faster while not."""

    def __init__(self, database_url: str, wake: Callable[[], None]) -> None:
        self.dsn = _asyncpg_dsn(database_url)
        self.wake = wake
        self.connected = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="kave-listener")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.connected = False

    def _notified(self, *_: Any) -> None:
        self.wake()

    async def _run(self) -> None:
        import asyncpg

        pause = RECONNECT_SECONDS[0]
        while True:
            lost = asyncio.Event()
            connection = None
            try:
                connection = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT_SECONDS)
                connection.add_termination_listener(lambda _, lost=lost: lost.set())
                await connection.add_listener(CHANNEL, self._notified)
                self.connected, pause = True, RECONNECT_SECONDS[0]
                logger.info("wakeups.listening", channel=CHANNEL)
                self.wake()  # whatever was notified while we were not listening
                await lost.wait()
                logger.warning("wakeups.listener_lost")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 (the database may be down: retry later)
                logger.warning("wakeups.listen_failed", exc_type=type(exc).__name__)
            finally:
                self.connected = False
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(connection.close(), 2)
            await asyncio.sleep(pause)
            pause = min(pause * 2, RECONNECT_SECONDS[1])
