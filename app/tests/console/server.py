"""A real Kave server for the browser tests: uvicorn on a free port, in a thread of its own.

The app runs on the thread's event loop with the suite's migrated database; `run` executes a
coroutine on that loop with the app's own services (users are created, rows are read, through
the domains' services and repositories), so the tests never open a second engine on SQLite.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import httpx
import uvicorn
from fastapi import FastAPI

from app.core.config import Settings
from app.deps import Services
from app.main import create_app
from app.tests.server_process import free_port

T = TypeVar("T")


class ThreadedServer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = free_port()
        # `localhost`, a potentially trustworthy origin: Chromium keeps the console's Secure
        # cookie on it over plain http, as it would over https in production.
        self.url = f"http://localhost:{self.port}"
        self.app: FastAPI = create_app(settings)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._serve, name="console-test-server", daemon=True)

    def _serve(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve())
        self.loop.close()

    def start(self, timeout: float = 30.0) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.started:
                try:
                    if httpx.get(f"http://127.0.0.1:{self.port}/health/live").status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
            if not self.thread.is_alive():
                raise RuntimeError("the console test server stopped during start-up")
            time.sleep(0.05)
        raise RuntimeError(f"the console test server did not start in {timeout} s")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    @property
    def services(self) -> Services:
        found: Services = self.app.state.services
        return found

    def run(self, work: Callable[[Services], Awaitable[T]], timeout: float = 30.0) -> T:
        """Run `work(services)` on the server's loop and return its result."""
        assert self.loop is not None
        future: Future[T] = asyncio.run_coroutine_threadsafe(_call(work, self.services), self.loop)
        return future.result(timeout)

    def wait_for(
        self, check: Callable[[Services], Awaitable[Any]], *, timeout: float = 20.0
    ) -> Any:
        """Poll `check` until it returns something truthy; that is returned."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.run(check)
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout} s")
            time.sleep(0.05)


async def _call(work: Callable[[Services], Awaitable[T]], services: Services) -> T:
    return await work(services)
