"""Profile the task path alone: N bench emails stored as received, then processed in this
process by the worker's own code, timed in CPU seconds beside the stdlib parse floor.

    BENCH_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/kave_bench \\
        .venv/bin/python -m bench.worker_profile [--emails 2000] [--pyinstrument out.html]

No HTTP, no other process: what is printed is the worker's CPU per email (its event loop and
its threads) and, with --pyinstrument, where it goes. The database server's own CPU is not in
the figure (it is in `make bench`'s drain, through the machine's cores).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from app.core.config import Settings
from app.core.logging import configure_logging
from app.mandrill.classify import classify_batch
from app.processing.new_events import insert_new_events
from app.worker_runtime import HANDLERS, open_stores
from bench.bodies import Template, Tokens
from bench.db import Database
from bench.servers import kave_env
from bench.topologies import stdlib_parse_ms


def database_cpu_seconds() -> float:
    """User + system CPU of every PostgreSQL process on this machine (its backends exit with
    their connections: read while the worker's pool still holds them)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, _, rest = text.partition(" (")[2].partition(")")
        if name.startswith("postgres"):
            fields = rest.split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def _seed(settings: Settings, template: Template, tokens: list[str]) -> None:
    from app.db.session import build_engine

    engine = build_engine(settings)
    try:
        for start in range(0, len(tokens), 200):
            events = [
                classify_batch(orjson.loads(template.value(token)))[0]
                for token in tokens[start : start + 200]
            ]
            async with engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await insert_new_events(conn, events, [uuid.uuid4() for _ in events])
    finally:
        await engine.dispose()


async def _process(settings: Settings) -> tuple[int, float, float, float, float]:
    from app.processing.inbox import EventRepository
    from app.processing.worker import EventWorker

    async with open_stores(settings) as stores:
        worker = EventWorker(
            settings=settings,
            session_factory=stores.session_factory,
            blob_store=stores.blob_store,
            handlers=HANDLERS,
        )
        await worker.start()
        times, wall, database = os.times(), time.perf_counter(), database_cpu_seconds()
        worker.wake()
        while True:
            await asyncio.sleep(0.25)  # its own reads are in the figure: seldom
            async with stores.session_factory() as session:
                left, _ = await EventRepository(session).count_unprocessed()
            if left == 0:
                break
        after, wall = os.times(), time.perf_counter() - wall
        database = database_cpu_seconds() - database
        user, system = after.user - times.user, after.system - times.system
        await worker.stop()
        async with stores.session_factory() as session:
            counts = await EventRepository(session).count_by_status_and_kind()
    processed = sum(n for status, _, n in counts if status == "processed")
    return processed, user, system, database, wall


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.worker_profile", description=__doc__)
    p.add_argument("--emails", type=int, default=2000)
    p.add_argument("--pyinstrument", type=Path, help="write a pyinstrument HTML profile here")
    args = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="kave-wprof-"))
    db = Database(os.environ.get("BENCH_DATABASE_URL"), workdir)
    env = kave_env(db.url, workdir / "blobs", processing=True, log_level="WARNING")
    os.environ.update(env)
    settings = Settings()
    configure_logging(settings)
    template = Template.inbound()
    tokens = Tokens().take(args.emails)

    async def run() -> tuple[int, float, float, float, float]:
        await db.recreate()
        await db.close()
        await _seed(settings, template, tokens)
        return await _process(settings)

    profiler: Any = None
    if args.pyinstrument:
        from pyinstrument import Profiler

        profiler = Profiler(async_mode="disabled")
        profiler.start()
    processed, user, system, database, wall = asyncio.run(run())
    cpu = user + system
    if profiler is not None:
        profiler.stop()
        args.pyinstrument.write_text(profiler.output_html())
        print(profiler.output_text(unicode=False, show_all=False)[:20000])
    raw = orjson.loads(template.value(tokens[0]))[0]["msg"]["raw_msg"].encode()
    floor = stdlib_parse_ms(raw)
    n = max(processed, 1)
    per = 1000 * cpu / n
    # SQLite runs inside the worker: its CPU is in the worker's figure.
    server = "" if db.is_sqlite else f"database server CPU {1000 * database / n:.2f} ms/email; "
    print(
        f"{db.kind}: {processed}/{args.emails} processed in {wall:.1f} s = "
        f"{processed / wall:.0f}/s; worker CPU {per:.2f} ms/email (user "
        f"{1000 * user / n:.2f}, system {1000 * system / n:.2f}); {server}"
        f"stdlib parse floor {floor:.2f} ms; ratio {per / floor:.1f}x"
    )


if __name__ == "__main__":
    main()
