"""WinRS shells and commands of one server: quota, idle expiry, running the host, handing out output.

The host answers at once with a ``HostResult``; the command becomes "ready" ``duration_s`` after it
started, and until then Receive waits (at most OperationTimeout) without holding a thread.
"""

from __future__ import annotations

import asyncio
import base64
import math
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from emconsole.backends.lab.host import CommandRequest, HostResult, PowerShellHost, ShellContext
from emconsole.backends.lab.pwsh.clixml import streams_document
from emconsole.backends.lab.wire.cmdline import EXIT_BAD_PARAMETER, Decoded
from emconsole.backends.lab.wire.codepage import decode_console, encode_console
from emconsole.backends.lab.wire.counters import Counters
from emconsole.backends.lab.wire.soap import new_guid

STREAM_CHUNK = 32 * 1024  # raw bytes per rsp:Stream element
RECEIVE_BUDGET = 96 * 1024  # raw bytes per ReceiveResponse: base64 of it stays under MaxEnvelopeSize 153600


@dataclass
class Command:
    """One command of a shell, from Command to Signal."""

    id: str
    decoded: Decoded
    started: float
    result: HostResult | None = None
    stdin: bytearray = field(default_factory=bytearray)
    sent_out: int = 0
    sent_err: int = 0
    finished: bool = False  # Done has been sent

    @property
    def ready_at(self) -> float:
        assert self.result is not None
        return self.started + self.result.duration_s if math.isfinite(self.result.duration_s) else math.inf


@dataclass
class Shell:
    """A WinRS shell: its code page, environment and commands."""

    id: str
    owner: str
    codepage: int
    env: dict[str, str]
    last_used: float
    commands: dict[str, Command] = field(default_factory=dict)


class ShellTable:
    """The shells of one server. Every method runs on the wire's event-loop thread."""

    def __init__(
        self,
        server_name: str,
        auth: str,
        host: PowerShellHost,
        counters: Counters,
        idle_timeout_s: float,
        max_shells: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.server_name = server_name
        self.auth = auth
        self.host = host
        self.counters = counters
        self.idle_timeout_s = idle_timeout_s
        self.max_shells = max_shells
        self.clock = clock
        self.shells: dict[str, Shell] = {}

    def _expire(self) -> None:
        now = self.clock()
        for shell_id in [s.id for s in self.shells.values() if now - s.last_used > self.idle_timeout_s]:
            self.delete(shell_id)

    def create(self, owner: str, codepage: int, env: dict[str, str]) -> Shell | None:
        """A new shell, or None when the owner is at MaxShellsPerUser."""
        self._expire()
        if sum(1 for s in self.shells.values() if s.owner == owner) >= self.max_shells:
            return None
        shell = Shell(new_guid(), owner, codepage, env, self.clock())
        self.shells[shell.id] = shell
        self.counters.open_shells += 1
        return shell

    def get(self, shell_id: str | None) -> Shell | None:
        """The shell if it exists and has not idled out; using it resets its idle time."""
        self._expire()
        shell = self.shells.get(shell_id or "")
        if shell is not None:
            shell.last_used = self.clock()
        return shell

    def delete(self, shell_id: str) -> bool:
        shell = self.shells.pop(shell_id, None)
        if shell is None:
            return False
        self.counters.open_shells -= 1
        for command in shell.commands.values():
            self._finish(command)
        return True

    def start(self, shell: Shell, decoded: Decoded, immediate: HostResult | None) -> Command:
        """Register a command; ``immediate`` is a result known without the host (cmd.exe refusals)."""
        command = Command(new_guid(), decoded, self.clock(), result=immediate)
        if immediate is None and decoded.error is not None:
            command.result = HostResult(
                b"", encode_console(decoded.error + "\n", shell.codepage), EXIT_BAD_PARAMETER
            )
        shell.commands[command.id] = command
        self.counters.running_commands += 1
        return command

    def _finish(self, command: Command) -> None:
        if not command.finished:
            command.finished = True
            self.counters.running_commands -= 1

    def signal(self, shell: Shell, command_id: str) -> bool:
        command = shell.commands.pop(command_id, None)
        if command is None:
            return False
        self._finish(command)
        return True

    def run_host(self, shell: Shell, command: Command) -> None:
        """Ask the host once, with the stdin received so far (at the first Receive or at end of stdin)."""
        if command.result is not None:
            return
        script = command.decoded.script
        if command.decoded.script_from_stdin:
            script = decode_console(bytes(command.stdin), shell.codepage)
        request = CommandRequest(command.decoded.command_line, script, bytes(command.stdin))
        context = ShellContext(
            self.server_name, shell.id, shell.codepage, shell.owner, self.auth, dict(shell.env)
        )
        try:
            command.result = self.host.run(request, context)
        except Exception as exc:  # a host bug must not take the server down: report it like PowerShell would
            self.counters.host_errors += 1
            text = streams_document([("Error", f"The lab host failed: {type(exc).__name__}: {exc}")])
            command.result = HostResult(b"", encode_console(text, shell.codepage), 1)

    def take_output(self, command: Command) -> tuple[list[tuple[str, str, bool]], int | None]:
        """The next ReceiveResponse's streams (name, base64, end) and the exit code once all is out."""
        assert command.result is not None
        result, budget, streams = command.result, RECEIVE_BUDGET, []
        for name in ("stdout", "stderr"):
            data = result.stdout if name == "stdout" else result.stderr
            sent = command.sent_out if name == "stdout" else command.sent_err
            while sent < len(data) and budget > 0:
                piece = data[sent : sent + min(STREAM_CHUNK, budget)]
                sent += len(piece)
                budget -= len(piece)
                streams.append((name, base64.b64encode(piece).decode("ascii"), False))
            if name == "stdout":
                command.sent_out = sent
            else:
                command.sent_err = sent
        if command.sent_out < len(result.stdout) or command.sent_err < len(result.stderr):
            return streams, None
        streams += [("stdout", "", True), ("stderr", "", True)]
        self._finish(command)
        return streams, result.exit_code


class EarlyStarts:
    """Commands run once created, as WinRS starts the process at Command, not at the first Receive.

    One per pass of the event loop: the requests that arrive meanwhile (a wave's Receives) are read
    between two scripts, so their latency runs while the next scripts execute, not after all of them.
    A command whose script comes on stdin waits for it (first Receive or end of input); one signalled,
    or whose shell is gone, before its turn is not run. A Receive that comes first runs it itself.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending: deque[tuple[ShellTable, Shell, Command]] = deque()

    def add(self, table: ShellTable, shell: Shell, command: Command) -> None:
        self.pending.append((table, shell, command))
        if len(self.pending) == 1:
            self.loop.call_soon(self._next)

    def _next(self) -> None:
        table, shell, command = self.pending.popleft()
        try:
            if shell.commands.get(command.id) is command and table.shells.get(shell.id) is shell:
                table.run_host(shell, command)
        finally:
            if self.pending:
                self.loop.call_soon(self._next)


_EARLY_STARTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, EarlyStarts] = weakref.WeakKeyDictionary()


def early_starts() -> EarlyStarts:
    """The running loop's queue of commands to start (one queue for every server the loop serves)."""
    loop = asyncio.get_running_loop()
    starts = _EARLY_STARTS.get(loop)
    if starts is None:
        starts = _EARLY_STARTS[loop] = EarlyStarts(loop)
    return starts
