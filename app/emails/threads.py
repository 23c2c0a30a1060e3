"""Conversations: which thread a message joins, and the merging of threads.

Every Message-ID a stored message carries or names (its own, In-Reply-To, References) is a
row of `thread_keys` pointing at a thread. A new message collects the threads of its keys:
none, it starts one; one, it joins it; several (it links conversations that were apart, e.g.
a reply that arrived before its parent, then the parent's own parent), they merge into the
oldest, the others pointing at it (`merged_into`) so an id handed out earlier still works.

An email reads its thread through its own key (`emails.thread_key`), never through a stored
thread id: a merge rewrites `thread_keys` only, so it cannot miss an email another worker
commits a moment later. Assignment runs in the transaction that stores the emails, for a whole
batch at once (one read of every key the batch names); on PostgreSQL it holds a
transaction-scoped advisory lock, so two workers never both decide "no thread yet" for two
messages of one conversation (SQLite has a single writer, and the first statement writes).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repository import insert_all
from app.emails.models import Thread, ThreadKey

# pg_advisory_xact_lock takes a bigint; this one is "kavethrd" in ASCII.
THREAD_LOCK_ID = 0x6B61766574687264
# A References header can name hundreds of ids; its root and most recent ones are enough to
# find the conversation.
MAX_NAMED_KEYS = 50
MAX_KEY_CHARS = 600
# Keys read per statement (a batch of long References headers names thousands).
KEYS_PER_READ = 1000


def own_key(message_id: str | None, event_id: uuid.UUID) -> str:
    """The message's own key: its Message-ID, or (without one) its event, stable on replay."""
    return (message_id or f"event:{event_id}")[:MAX_KEY_CHARS]


def named_keys(in_reply_to: str | None, references: Sequence[str]) -> list[str]:
    refs = list(references)
    if len(refs) > MAX_NAMED_KEYS:
        refs = [refs[0], *refs[-(MAX_NAMED_KEYS - 1) :]]
    named = [*refs, *([in_reply_to] if in_reply_to else [])]
    return [key[:MAX_KEY_CHARS] for key in named if key]


class ThreadRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def assign(self, *, key: str, named: Iterable[str]) -> uuid.UUID:
        """The thread of the message whose own key is `key`; the caller commits."""
        return (await self.assign_many([(key, named)]))[0]

    async def assign_many(self, messages: Sequence[tuple[str, Iterable[str]]]) -> list[uuid.UUID]:
        """`assign` for several messages, in order (a later one sees the threads the earlier
        ones started or merged): one lock, one read, one insert per table. A merge, which is
        rare, costs its own statements."""
        wanted = [sorted({key, *named}) for key, named in messages]
        if not wanted:
            return []
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": THREAD_LOCK_ID}
            )
        else:
            # Take SQLite's write lock before reading, so what is read stays true.
            await self.session.execute(text("UPDATE threads SET id = id WHERE 0"))
        every = sorted({key for keys in wanted for key in keys})
        known: dict[str, uuid.UUID] = {}
        for start in range(0, len(every), KEYS_PER_READ):
            rows = await self.session.execute(
                select(ThreadKey.key, ThreadKey.thread_id).where(
                    ThreadKey.key.in_(every[start : start + KEYS_PER_READ])
                )
            )
            known.update((row.key, row.thread_id) for row in rows.all())
        targets: list[uuid.UUID] = []
        threads: list[Thread] = []
        thread_keys: list[ThreadKey] = []
        for keys in wanted:
            thread_ids = {known[key] for key in keys if key in known}
            if not thread_ids:
                thread = Thread(id=uuid.uuid4())
                threads.append(thread)
                target = thread.id
            elif len(thread_ids) == 1:
                target = next(iter(thread_ids))
            else:
                # What this batch added so far goes first, so the merge moves it too.
                await self._insert(threads, thread_keys)
                threads, thread_keys = [], []
                target = await self._merge(thread_ids)
                known = {k: target if t in thread_ids else t for k, t in known.items()}
            for missing in keys:
                if missing not in known:
                    thread_keys.append(ThreadKey(key=missing, thread_id=target))
                    known[missing] = target
            targets.append(target)
        await self._insert(threads, thread_keys)
        return targets

    async def _insert(self, threads: Sequence[Thread], thread_keys: Sequence[ThreadKey]) -> None:
        await insert_all(self.session, threads)
        await insert_all(self.session, thread_keys)

    async def _merge(self, thread_ids: set[uuid.UUID]) -> uuid.UUID:
        threads = (
            await self.session.scalars(
                select(Thread)
                .where(Thread.id.in_(thread_ids))
                .order_by(Thread.created_at, Thread.id)
            )
        ).all()
        target = threads[0].id if threads else min(thread_ids)
        others = [tid for tid in thread_ids if tid != target]
        await self.session.execute(
            update(ThreadKey).where(ThreadKey.thread_id.in_(others)).values(thread_id=target)
        )
        await self.session.execute(
            update(Thread)
            .where((Thread.id.in_(others)) | (Thread.merged_into.in_(others)))
            .values(merged_into=target)
        )
        return target

    async def resolve(self, thread_id: uuid.UUID) -> Thread | None:
        """The thread under this id, following a merge to the thread that survived it."""
        thread = await self.session.get(Thread, thread_id)
        if thread is not None and thread.merged_into is not None:
            thread = await self.session.get(Thread, thread.merged_into)
        return thread

    async def thread_of(self, key: str | None) -> uuid.UUID | None:
        if key is None:
            return None
        found: uuid.UUID | None = await self.session.scalar(
            select(ThreadKey.thread_id).where(ThreadKey.key == key)
        )
        return found

    async def threads_of(self, keys: Iterable[str | None]) -> dict[str, uuid.UUID]:
        """`thread_of` for several emails at once: key -> thread id (keys without one left out)."""
        wanted = {key for key in keys if key is not None}
        if not wanted:
            return {}
        rows = await self.session.execute(
            select(ThreadKey.key, ThreadKey.thread_id).where(ThreadKey.key.in_(wanted))
        )
        return {str(key): thread for key, thread in rows.all()}
