"""A program in a pseudo-terminal, read the way an operator's terminal receives it.

The benchmarks start the console as an operator does (a real terminal, not Textual's headless
driver) and clock when a text first reaches the terminal. Textual redraws only what changed, so the
stream is searched with its escape sequences removed; each match is dated by the arrival of the
chunk that completed it.
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from collections.abc import Mapping, Sequence

_ESCAPES = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\x1b[=>]")
CTRL_Q = b"\x11"


class PtyProgram:
    """``argv`` in a pty of ``size`` (columns, rows); the clock starts at the spawn."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str] | None = None,
                 size: tuple[int, int] = (120, 40)) -> None:
        self.fd, child = pty.openpty()
        fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
        full_env = {**(env if env is not None else os.environ), "TERM": "xterm-256color",
                    "COLORTERM": "truecolor"}
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(list(argv), stdin=child, stdout=child, stderr=child, env=full_env,
                                     close_fds=True, start_new_session=True)
        os.close(child)
        self.text = bytearray()  # everything received, escapes removed
        self._ends: list[int] = []  # end offset of each chunk in ``text``...
        self._times: list[float] = []  # ...and when it arrived (seconds since the spawn)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self, wait_s: float) -> bool:
        """Take in what the program wrote within ``wait_s``; False once the terminal is closed."""
        if not select.select([self.fd], [], [], wait_s)[0]:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:
            return False
        if not chunk:
            return False
        self.text += _ESCAPES.sub(b"", chunk)
        self._ends.append(len(self.text))
        self._times.append(time.perf_counter() - self.started)
        return True

    def wait_for(self, pattern: re.Pattern[bytes], timeout_s: float,
                 start: int = 0) -> tuple[float, int] | None:
        """(seconds from the spawn to the arrival of the first match at or after ``start``, offset just
        past it), or None if it did not show up within ``timeout_s``."""
        deadline = time.perf_counter() + timeout_s
        while True:
            match = pattern.search(self.text, start)
            if match is not None:
                index = bisect.bisect_left(self._ends, match.end())
                return self._times[index], match.end()
            if time.perf_counter() > deadline or not self._read(0.05):
                return None

    def send(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def quit(self, keys: bytes = CTRL_Q, timeout_s: float = 30.0) -> float | None:
        """Send the quit keys and read the terminal while the program exits (a full pty would block
        its last writes); seconds it took, or None if it had to be killed."""
        started = time.perf_counter()
        with contextlib.suppress(OSError):
            self.send(keys)
        while self.proc.poll() is None and time.perf_counter() - started < timeout_s:
            if not self._read(0.05):
                time.sleep(0.02)
        took = time.perf_counter() - started if self.proc.poll() is not None else None
        if took is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.fd)
        return took


def marks(argv: Sequence[str], patterns: Mapping[str, re.Pattern[bytes]], timeout_s: float,
          env: Mapping[str, str] | None = None) -> dict[str, float]:
    """Run a program in a pty: seconds from its spawn to each named mark, in order, then "quit" (the
    seconds it took to exit after the quit keys). A mark not reached within ``timeout_s`` is missing."""
    term = PtyProgram(argv, env=env)
    seen: dict[str, float] = {}
    try:
        for name, pattern in patterns.items():
            found = term.wait_for(pattern, max(0.0, timeout_s - (time.perf_counter() - term.started)))
            if found is not None:
                seen[name] = found[0]
    finally:
        took = term.quit()
        if took is not None:
            seen["quit"] = took
    return seen
