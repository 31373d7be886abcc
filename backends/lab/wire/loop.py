"""One asyncio event loop in one dedicated thread serves every port of a lab.

Slow or hung commands are timers on this loop, not threads, so 500 servers cost one thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def _quiet(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Clients that reset, time out or reject the certificate are normal traffic for a lab: stay quiet."""
    exc = context.get("exception")
    if isinstance(exc, (ConnectionError, OSError, TimeoutError)):
        return
    loop.default_exception_handler(context)


class WireLoop:
    """Start, use from other threads, and stop an event loop thread."""

    def __init__(self, name: str = "lab-wire") -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(_quiet)
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def start(self) -> None:
        self.thread.start()
        self._ready.wait()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run a coroutine on the loop from another thread and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join()
