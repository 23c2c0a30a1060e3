"""A process-local wake-up call: whoever waits for news subscribes, whoever makes it rings.

It only shortens a wait; every waiter also polls, so a bell rung in another process (or not
at all) delays, never loses, what it announces.
"""

from __future__ import annotations

import asyncio
import contextlib


class Bell:
    def __init__(self) -> None:
        self._listeners: set[asyncio.Event] = set()

    def subscribe(self) -> asyncio.Event:
        listener = asyncio.Event()
        self._listeners.add(listener)
        return listener

    def unsubscribe(self, listener: asyncio.Event) -> None:
        self._listeners.discard(listener)

    def ring(self) -> None:
        for listener in list(self._listeners):
            listener.set()

    async def wait(self, seconds: float) -> bool:
        """Wait for the next ring, at most `seconds`; True if it rang."""
        listener = self.subscribe()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(listener.wait(), seconds)
            return listener.is_set()
        finally:
            self.unsubscribe(listener)
