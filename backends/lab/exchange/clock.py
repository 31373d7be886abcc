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
        self._offset_s = 0.0  # _offset in seconds, as ``seconds`` reads it
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
        """The current lab time (UTC, aware)."""
        return self.at(self.seconds())

    def seconds(self) -> float:
        """Lab seconds since ``start``: the current time without making a datetime (the organisation
        asks before every command whether a check is due: ~85 times per status script).

        No lock: it reads ``_offset_s`` once (``advance`` replaces it whole, under the lock that
        keeps concurrent advances from losing one).
        """
        if self._rate:
            return self._offset_s + (self._monotonic() - self._t0) * self._rate
        return self._offset_s

    def at(self, seconds: float) -> datetime:
        """The lab time ``seconds`` after ``start``."""
        return self._start + timedelta(seconds=seconds)

    def seconds_at(self, when: datetime) -> float:
        """``when`` as lab seconds since ``start`` (exact to the microsecond, as ``seconds``)."""
        return (when - self._start).total_seconds()

    def advance(self, delta: timedelta | float) -> datetime:
        """Move lab time forward (seconds or a timedelta); returns the new time."""
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        if delta < timedelta(0):
            raise ValueError("the lab clock never goes back")
        with self._lock:
            self._offset += delta
            self._offset_s = self._offset.total_seconds()  # from the exact sum: no float drift
        return self.now()

