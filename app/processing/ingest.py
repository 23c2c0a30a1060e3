"""Store a verified batch durably. The caller answers 200 only after `store_batch` returns.

Acknowledgements are group-committed: concurrent requests' events go to the database in one
autocommit INSERT, and each request is answered once the statement carrying its events has
committed. Durability per request is unchanged; what changes is the cost. Sixteen acks in
flight cost the database one commit instead of sixteen, and the service one round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import ParamSpec, Protocol, TypeVar

import structlog
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.errors import ServiceUnavailable
from app.processing import metrics
from app.processing.new_events import NewEvent, insert_new_events

P = ParamSpec("P")
T = TypeVar("T")

logger = structlog.get_logger("app.processing.ingest")

# Work on bigger bodies goes to a thread so one large message never stalls other requests.
THREAD_THRESHOLD_BYTES = 512 * 1024
# One statement carries at most this much; a single larger batch still goes alone.
MAX_GROUP_EVENTS = 500
MAX_GROUP_PAYLOAD_BYTES = 8 * 1024 * 1024
CLOSE_TIMEOUT_SECONDS = 10.0

_OUTAGES = (SQLAlchemyError, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted_ids: list[uuid.UUID]
    duplicates: int


async def offload_if_large(size: int, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    if size >= THREAD_THRESHOLD_BYTES:
        return await asyncio.to_thread(func, *args, **kwargs)
    return func(*args, **kwargs)


@dataclass(slots=True)
class _Waiting:
    events: Sequence[NewEvent]
    ids: list[uuid.UUID]
    done: asyncio.Future[list[uuid.UUID]]
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = sum(len(ev.payload) for ev in self.events)


def _blames_data(exc: BaseException) -> bool:
    """The statement failed on what it carried, so another group could still succeed."""
    return isinstance(exc, DataError | IntegrityError) or not isinstance(exc, _OUTAGES)


class GroupCommitter:
    """Collects the events of concurrent acknowledgements and inserts them together.

    A free flusher task takes everything waiting (up to MAX_GROUP_EVENTS and
    MAX_GROUP_PAYLOAD_BYTES), inserts it in one autocommit statement and resolves each
    request's future with the ids that were new. While statements run, the next group
    gathers, so the group size follows the load: one request alone is flushed at once. Two
    flushers (the default) let a group go out while the last one commits; more measured no
    better, with smaller groups.

    A group that fails on its data is retried request by request, so one bad request
    cannot fail the others; an unreachable database fails every request in the group with
    a 503, and Mailchimp retries them.
    """

    def __init__(self, engine: AsyncEngine, *, flushers: int = 2) -> None:
        self.engine = engine
        self.flushers = flushers
        self._waiting: list[_Waiting] = []
        self._flushing = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # nothing waiting and no statement running
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name=f"kave-ingest-flusher-{i}")
            for i in range(self.flushers)
        ]

    async def close(self) -> None:
        """Flush what is waiting, then stop. Requests still being answered are served first:
        the server stops taking requests and finishes the open ones before the lifespan ends."""
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
                await self._idle.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._fail(self._waiting, ServiceUnavailable("Kave is shutting down. Retry later."))
        self._waiting = []

    async def store(self, events: Sequence[NewEvent]) -> list[uuid.UUID]:
        """Durably insert `events`; returns the ids of those that were new."""
        if not events:
            return []
        if not self._tasks or all(task.done() for task in self._tasks):
            raise ServiceUnavailable("Kave is not accepting events right now. Retry later.")
        waiting = _Waiting(
            events, [uuid.uuid4() for _ in events], asyncio.get_running_loop().create_future()
        )
        self._waiting.append(waiting)
        self._idle.clear()
        self._wake.set()
        return await waiting.done

    async def _run(self) -> None:
        while True:
            if not self._waiting:
                if not self._flushing:
                    self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            group = self._take()
            self._flushing += 1
            try:
                await self._flush(group)
            except Exception as exc:
                logger.error("webhook.flush_crashed", exc_type=type(exc).__name__, exc_info=exc)
                self._fail(group, exc)
            finally:
                self._flushing -= 1
            # Not held while waiting for the next request: a large batch's payload goes now.
            del group

    def _take(self) -> list[_Waiting]:
        count = size = taken = 0
        for waiting in self._waiting:
            count += len(waiting.events)
            size += waiting.size
            if taken and (count > MAX_GROUP_EVENTS or size > MAX_GROUP_PAYLOAD_BYTES):
                break
            taken += 1
        group, self._waiting = self._waiting[:taken], self._waiting[taken:]
        return group

    async def _flush(self, group: list[_Waiting]) -> None:
        events = [ev for waiting in group for ev in waiting.events]
        ids = [id_ for waiting in group for id_ in waiting.ids]
        try:
            async with self.engine.connect() as connection:
                inserted = set(await insert_new_events(connection, events, ids))
        except Exception as exc:  # noqa: BLE001 (sorted below)
            if len(group) > 1 and _blames_data(exc):
                for waiting in group:
                    await self._flush([waiting])
                return
            self._fail(group, exc)
            return
        for waiting in group:
            if not waiting.done.done():
                waiting.done.set_result([id_ for id_ in waiting.ids if id_ in inserted])

    def _fail(self, group: list[_Waiting], exc: BaseException) -> None:
        outage = isinstance(exc, _OUTAGES)
        if outage:
            orig = exc.orig if isinstance(exc, DBAPIError) else None
            logger.warning(
                "webhook.store_failed",
                exc_type=type(exc).__name__,
                sqlstate=getattr(orig, "sqlstate", None),
                requests=len(group),
            )
        for waiting in group:
            if waiting.done.done():
                continue
            if outage:
                error = ServiceUnavailable(
                    "The event store is unavailable; the batch was not accepted. Retry later."
                )
                error.__cause__ = exc
                waiting.done.set_exception(error)
            else:
                waiting.done.set_exception(exc)


async def store_batch(
    committer: GroupCommitter, events: Sequence[NewEvent], *, received: int
) -> IngestResult:
    """Insert the new events; durable when this returns. A database failure becomes a 503."""
    ids = await committer.store(events)
    result = IngestResult(accepted_ids=ids, duplicates=received - len(ids))
    metrics.observe_stored(events, stored=len(ids), duplicates=result.duplicates)
    return result


class _Submits(Protocol):
    def submit(self, event_ids: Iterable[uuid.UUID]) -> None: ...


class Intake:
    """Store, then hand to the worker: what every webhook does once its events are authentic."""

    def __init__(self, committer: GroupCommitter, worker: _Submits) -> None:
        self.committer = committer
        self.worker = worker

    async def accept(self, events: Sequence[NewEvent], *, received: int) -> IngestResult:
        """Durable when this returns (a database failure is a 503); the new ids are queued."""
        result = await store_batch(self.committer, events, received=received)
        self.worker.submit(result.accepted_ids)
        return result
