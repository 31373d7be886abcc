"""The command log: every script sent to a server, with what came back.

Why: read-only work (refresh, OCS test) is not audited, but an admin debugging a server still needs
to see exactly what ran, how long it took and what it printed. Bounded in memory (a deque), and
optionally appended to a JSON-lines file. Scripts never carry secrets (credentials travel in HTTP
auth, not in PowerShell), so they may be logged whole.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

DEFAULT_MAX_ENTRIES = 2000


@dataclass(frozen=True)
class CommandLogEntry:
    """One script sent to one server."""

    target: str
    started: datetime
    duration: float
    round_trips: int
    exit_code: int | None
    bytes: int
    first_error_line: str
    script: str
    raw_output: str
    failure_kind: str = ""


class CommandLog:
    """Thread-safe bounded log of scripts sent; ``subscribe`` lets a screen follow it live."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES, path: Path | str | None = None) -> None:
        self._entries: deque[CommandLogEntry] = deque(maxlen=max_entries)
        self._lock = threading.Lock()
        self._path = Path(path) if path is not None else None
        self._listeners: list[Callable[[CommandLogEntry], None]] = []

    def add(self, entry: CommandLogEntry) -> None:
        with self._lock:
            self._entries.append(entry)
            listeners = list(self._listeners)
            if self._path is not None:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                record = asdict(entry) | {"started": entry.started.isoformat()}
                with self._path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        for listener in listeners:
            listener(entry)

    def entries(self) -> list[CommandLogEntry]:
        with self._lock:
            return list(self._entries)

    def subscribe(self, listener: Callable[[CommandLogEntry], None]) -> Callable[[], None]:
        """Call ``listener`` (from a worker thread) for each new entry; returns an unsubscribe."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe
