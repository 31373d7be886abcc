"""The seam between the lab's wire (WS-Management) and whatever runs the command behind it.

The wire decodes a WinRS command into a ``CommandRequest`` and asks a ``PowerShellHost`` to run it.
The host answers at once with what the command printed and how long it *would* have taken
(``duration_s``): the wire withholds the output until that much time has passed, answering
Receive with ``w:TimedOut`` meanwhile, so a slow or hung command costs no thread in the lab.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class ShellContext:
    """What the host knows about the shell a command runs in."""

    server_name: str
    shell_id: str
    codepage: int = 437
    username: str = ""
    auth: str = "basic"
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CommandRequest:
    """A decoded command: the PowerShell script text (None for a non-PowerShell command line)."""

    command_line: str
    script: str | None
    stdin: bytes = b""


@dataclass(frozen=True)
class HostResult:
    """What the command wrote and how it ended. ``duration_s`` may be ``math.inf`` (a hang)."""

    stdout: bytes
    stderr: bytes
    exit_code: int
    duration_s: float = 0.0


class PowerShellHost(Protocol):
    """Runs one command for one server of the lab."""

    def run(self, request: CommandRequest, context: ShellContext) -> HostResult: ...


def not_a_program(request: CommandRequest, codepage: int) -> HostResult:
    """What cmd.exe answers for a command line that is not a program the lab runs (only PowerShell is)."""
    from emconsole.backends.lab.wire.codepage import encode_console

    program = request.command_line.split(" ", 1)[0]
    text = f"'{program}' is not recognized as an internal or external command,\n"
    text += "operable program or batch file.\n"
    return HostResult(b"", encode_console(text, codepage), 1)
