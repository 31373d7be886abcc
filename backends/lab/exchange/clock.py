"""A virtual clock for the lab: manual in tests (advanced explicitly), fast in the demo.

The EM engine is driven by this clock only, never by wall time, so a seed and a sequence of
``advance`` calls always give the same runs, events and times.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

DEFAULT_START = datetime(2026, 8, 3, 9, 0, 0, tzinfo=timezone.utc)
DEMO_RATE = 60.0  # one lab hour per wall minute


class VirtualClock:
    """Lab time = start + explicit advances (+ scaled wall time when ``rate`` is set)."""

    def __init__(
        self,
        start: datetime = DEFAULT_START,
        rate: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if start.tzinfo is None:
            start = start.replace(tzinfo=timezone.utc)
        self._start = start
        self._offset = timedelta(0)
        self._rate = rate
        self._monotonic = monotonic
        self._t0 = monotonic()
        self._lock = threading.Lock()

    @property
    def start(self) -> datetime:
        return self._start

    @property
    def rate(self) -> float | None:
        """Lab seconds per wall second, or None for a manual clock."""
        return self._rate

    def now(self) -> datetime:
        """The current lab time (UTC, aware).

        No lock: it reads ``_offset`` once (``advance`` replaces it whole, under the lock that keeps
        concurrent advances from losing one), and every command asks for the time.
        """
        current = self._start + self._offset
        if self._rate:
            current += timedelta(seconds=(self._monotonic() - self._t0) * self._rate)
        return current

    def advance(self, delta: timedelta | float) -> datetime:
        """Move lab time forward (seconds or a timedelta); returns the new time."""
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        if delta < timedelta(0):
            raise ValueError("the lab clock never goes back")
        with self._lock:
            self._offset += delta
        return self.now()

