"""`emconsole` as an operator starts it: in a pseudo-terminal, on a config file, against a lab.

The password prompt (``password_from = "prompt"``) must happen on the terminal before the console
takes it over — never from a worker thread inside the TUI — and only once per account.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import consolekit
import pytest
from consolekit import LabStarter

console_lab = consolekit.console_lab
_ESCAPES = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\x1b[=>]")


class Terminal:
    """A child process on a 120x40 pseudo-terminal; ``expect`` reads until a pattern shows."""

    def __init__(self, args: list[str]) -> None:
        self.fd, child = pty.openpty()
        fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color"}
        self.proc = subprocess.Popen(args, stdin=child, stdout=child, stderr=child, env=env,
                                     close_fds=True, start_new_session=True)
        os.close(child)
        self.seen = b""

    def expect(self, pattern: bytes, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.seen):
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not shown; last output: {self.seen[-800:]!r}")
            if select.select([self.fd], [], [], 0.05)[0]:
                try:
                    self.seen += _ESCAPES.sub(b"", os.read(self.fd, 65536))
                except OSError:  # the child closed the terminal
                    raise AssertionError(f"{pattern!r} not shown before exit: {self.seen[-800:]!r}") from None

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def close(self, timeout: float = 30.0) -> int:
        """Wait for the child to exit, reading its output meanwhile (a full terminal would block it)."""
        deadline = time.monotonic() + timeout
        try:
            while self.proc.poll() is None and time.monotonic() < deadline:
                if select.select([self.fd], [], [], 0.05)[0]:
                    try:
                        os.read(self.fd, 65536)
                    except OSError:
                        break
            return self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            os.close(self.fd)


def test_prompted_password_is_asked_once_before_the_console_starts(console_lab: LabStarter,
                                                                   tmp_path: Path) -> None:
    lab, _config = console_lab(servers=2)
    servers = "".join(f'[[servers]]\nname = "{s.name}"\nhost = "127.0.0.1"\nport = {s.port}\n\n'
                      for s in lab.fleet.servers)
    config = tmp_path / "config.toml"
    config.write_text(
        f'audit_path = "{tmp_path / "audit.jsonl"}"\nrefresh_interval = 0\n\n'
        '[defaults]\nscheme = "http"\ntransport = "basic"\nems = "snapin"\n'
        f'username = "{lab.fleet.spec.username}"\npassword_from = "prompt"\n'
        'tags = { environment = "production" }\n\n' + servers, encoding="utf-8")
    term = Terminal([sys.executable, "-m", "emconsole", "--config", str(config)])
    try:
        term.expect(rb"Password for labadmin")
        term.send(lab.fleet.spec.password.encode() + b"\r")
        # Both servers answer with the one password typed: the console got it, and asked once.
        term.expect(rb"production +2 servers.*errors 0.*READ-WRITE", timeout=60)
        term.expect(rb"(?s)Running.*Running", timeout=60)
        assert term.seen.count(b"Password for") == 1
        assert lab.fleet.spec.password.encode() not in term.seen
    finally:
        term.send(b"\x11")  # ctrl+q
        assert term.close() == 0


@pytest.mark.parametrize(("operator_fps", "period"), [(None, 1 / 120), ("30", 1 / 30)])
def test_frames_come_up_to_120_a_second_unless_the_operator_sets_textual_fps(
        operator_fps: str | None, period: float) -> None:
    """Textual's frame slot (1/TEXTUAL_FPS) bounds how long a key's frame waits: the console sets 120
    before any screen imports Textual; an operator's own setting is kept."""
    env = {k: v for k, v in os.environ.items() if k != "TEXTUAL_FPS"}
    if operator_fps is not None:
        env["TEXTUAL_FPS"] = operator_fps
    probe = "import emconsole.screens.app, textual.screen as s; print(s.UPDATE_PERIOD)"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert float(out.stdout) == pytest.approx(period)
