"""Outlet benchmark: notifications/s to a local receiver, and acknowledgement -> notification
latency at low load.

    .venv/bin/python -m bench.notifications              # temp SQLite file
    BENCH_DATABASE_URL=postgresql+asyncpg://... .venv/bin/python -m bench.notifications
    (the PostgreSQL database's public schema is dropped and recreated)

Kave runs as started by default (create_app + lifespan here, the dispatcher in the worker
child it starts); the receiver is an aiohttp server on 127.0.0.1 port 0 in this process, so the
figures include the receiver's own cost. Throughput: N pending notifications (real emails,
written in one transaction) sent to one destination and to four. Latency: one signed inbound
webhook at a time; from its 200 to the receiver's request. Prints the load average beside the
figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from alembic import command
from app.core.config import Settings
from app.db.base import utcnow
from app.destinations.models import Destination, Notification
from app.destinations.outbox import NOTIFICATIONS_DUE
from app.destinations.signing import new_secret
from app.emails.models import Email
from app.main import create_app
from app.mandrill.signature import mandrill_signature

ROOT = Path(__file__).resolve().parents[1]
WEBHOOK_URL = "https://kave.bench/api/v1/webhooks/mailchimp"
WEBHOOK_KEY = "bench-webhook-key-0001"


class Receiver:
    def __init__(self) -> None:
        self.count = 0
        self.arrivals: list[float] = []
        self.changed = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.count += 1
        self.arrivals.append(time.perf_counter())
        self.changed.set()
        return web.Response(text="ok")

    async def until(self, count: int, seconds: float = 300.0) -> None:
        async with asyncio.timeout(seconds):
            while self.count < count:
                self.changed.clear()
                await self.changed.wait()


async def _reset(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


def _migrate(url: str) -> None:
    asyncio.run(_reset(url))
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")


def _destination(url: str) -> Destination:
    now = utcnow()
    return Destination(
        id=uuid.uuid4(),
        url=url,
        recipients="*",
        description="bench",
        enabled=True,
        secret=new_secret(),
        consecutive_failures=0,
        created_at=now,
        updated_at=now,
    )


async def throughput(app: Any, receiver: Receiver, url: str, *, total: int, fan: int) -> float:
    factory = app.state.services.session_factory
    start_count = receiver.count
    async with factory() as session:
        destinations = [_destination(url) for _ in range(fan)]
        session.add_all(destinations)
        now = utcnow()
        for i in range(total):
            email = Email(
                id=uuid.uuid4(),
                subject=f"bench {i}",
                text_body="hello " * 40,
                html_body="<p>hello</p>",
                from_address="alice@example.org",
                envelope_recipient="inbox@kave.example.com",
                received_at=now,
                raw_size=0,
            )
            session.add(email)
            session.add(
                Notification(
                    id=uuid.uuid4(),
                    destination_id=destinations[i % fan].id,
                    email_id=email.id,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
        await session.commit()
    started = time.perf_counter()
    NOTIFICATIONS_DUE.ring()
    await receiver.until(start_count + total)
    elapsed = time.perf_counter() - started
    async with factory() as session:
        for d in destinations:
            found = await session.get(Destination, d.id)
            assert found is not None
            found.enabled = False  # out of the way of the next phase
        await session.commit()
    return total / elapsed


def _inbound(i: int) -> tuple[bytes, dict[str, str]]:
    from urllib.parse import urlencode

    import orjson

    raw = (
        f"From: Alice <alice@example.org>\r\nTo: inbox@kave.example.com\r\n"
        f"Subject: latency {i}\r\nMessage-ID: <{uuid.uuid4().hex}@example.org>\r\n\r\nHello\r\n"
    )
    events = orjson.dumps(
        [
            {
                "event": "inbound",
                "ts": int(time.time()),
                "msg": {"raw_msg": raw, "email": "inbox@kave.example.com"},
            }
        ]
    ).decode()
    params = [("mandrill_events", events)]
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Mandrill-Signature": mandrill_signature(WEBHOOK_KEY.encode(), WEBHOOK_URL, params),
    }
    return urlencode(params).encode(), headers


async def latency(app: Any, receiver: Receiver, url: str, *, samples: int) -> list[float]:
    factory = app.state.services.session_factory
    async with factory() as session:
        session.add(_destination(url))
        await session.commit()
    transport = httpx.ASGITransport(app=app)
    found: list[float] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://kave.bench") as client:
        for i in range(samples):
            body, headers = _inbound(i)
            before = receiver.count
            answer = await client.post("/api/v1/webhooks/mailchimp", content=body, headers=headers)
            acked = time.perf_counter()
            assert answer.status_code == 200, answer.text
            await receiver.until(before + 1, seconds=30)
            found.append((receiver.arrivals[before] - acked) * 1000)
            await asyncio.sleep(0.05)  # low load: one at a time, with a pause
    return found


async def main(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="kave-bench-outlet-"))
    url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite+aiosqlite:///{workdir / 'kave.db'}"
    with ThreadPoolExecutor(1) as pool:
        pool.submit(_migrate, url).result()
    # Through the environment, so the worker child the app starts by default (where the
    # dispatcher runs, as under `make run`) reads the same settings as this process.
    os.environ.update(
        ENVIRONMENT="test",
        DATABASE_URL=url,
        STORAGE_LOCAL_PATH=str(workdir / "blobs"),
        MAILCHIMP_WEBHOOK_URL=WEBHOOK_URL,
        MAILCHIMP_WEBHOOK_SECRET=WEBHOOK_KEY,
        SECRET_KEY="bench-secret-key-that-is-long-enough-for-hs256",
        LOG_LEVEL="WARNING",
        LOG_FORMAT="console",
        NOTIFICATION_MAX_IN_FLIGHT=str(args.in_flight),
    )
    settings = Settings(_env_file=None)
    receiver = Receiver()
    server = web.Application()
    server.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(server, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    hook = f"http://127.0.0.1:{port}/hook"
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            load_before = os.getloadavg()
            one = await throughput(app, receiver, hook, total=args.notifications, fan=1)
            four = await throughput(app, receiver, hook, total=args.notifications, fan=4)
            lat = await latency(app, receiver, hook, samples=args.samples)
            load_after = os.getloadavg()
    finally:
        await runner.cleanup()
    lat.sort()
    p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))]
    print(
        f"database: {url.split(':')[0]}, cores: {os.cpu_count()}, "
        f"NOTIFICATION_MAX_IN_FLIGHT={args.in_flight}"
    )
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    print(f"load average after:  {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    print(f"notifications/s, 1 destination:  {one:8.0f}   (target >= 500)")
    print(f"notifications/s, 4 destinations: {four:8.0f}")
    print(
        f"ack -> notification latency, {len(lat)} samples: p50 {statistics.median(lat):.1f} ms, "
        f"p95 {p95:.1f} ms, max {lat[-1]:.1f} ms   (target p50 < 200 ms)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.notifications")
    parser.add_argument(
        "--notifications", type=int, default=int(os.environ.get("BENCH_NOTIFICATIONS", 3000))
    )
    parser.add_argument(
        "--samples", type=int, default=int(os.environ.get("BENCH_LATENCY_SAMPLES", 50))
    )
    parser.add_argument("--in-flight", type=int, default=int(os.environ.get("BENCH_IN_FLIGHT", 4)))
    asyncio.run(main(parser.parse_args()))
