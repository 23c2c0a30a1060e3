"""A real local HTTP receiver for notifications: an aiohttp server on port 0 that records
every request and answers what the test scripts (a status per call, then 200)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answered in turn, then 200
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        async with asyncio.timeout(timeout):
            while len(self.requests) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.requests


@asynccontextmanager
async def receiver(path: str = "/hook") -> AsyncIterator[Receiver]:
    state: Receiver | None = None

    async def handle(request: web.Request) -> web.Response:
        assert state is not None
        body = await request.read()
        state.requests.append(Received(request.path, dict(request.headers), body))
        state.arrived.set()
        status = state.statuses.pop(0) if state.statuses else 200
        return web.Response(status=status, text=f"answer {status}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state = Receiver(url=f"http://127.0.0.1:{port}{path}")
    try:
        yield state
    finally:
        await runner.cleanup()


async def eventually(check: Callable[[], object], timeout: float = 20.0) -> None:
    """Poll until `check()` is truthy (a condition, never a timing assertion)."""
    async with asyncio.timeout(timeout):
        while not await _value(check):  # noqa: ASYNC110 (the condition is a database read)
            await asyncio.sleep(0.02)


async def _value(check: Callable[[], object]) -> object:
    value = check()
    if asyncio.iscoroutine(value):
        return await value
    return value
