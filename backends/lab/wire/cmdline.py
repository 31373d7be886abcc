"""Decode a WinRS command line the way cmd.exe and powershell.exe would see it.

Limits: a line through cmd.exe longer than 8,191 characters is refused by cmd.exe ("The command line
is too long.", exit 1); a process command line over 32,767 characters makes CreateProcess fail
(ERROR_FILENAME_EXCED_RANGE), which WinRS reports as a fault on the Command request.
PowerShell's switches: -EncodedCommand (any prefix from -e, and -ec), -Command (-c; ``-`` reads the
script from stdin), plus the switches that take a value and the ones that do not.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

CMD_EXE_LIMIT = 8191
CREATE_PROCESS_LIMIT = 32767
EXIT_BAD_PARAMETER = 64  # powershell.exe's exit code for a bad command-line parameter

_TOKEN = re.compile(r'"[^"]*"?|\S+')
_VALUE_SWITCHES = (
    "executionpolicy",
    "inputformat",
    "outputformat",
    "windowstyle",
    "version",
    "configurationname",
    "psconsolefile",
)
_FLAG_SWITCHES = ("noprofile", "noninteractive", "nologo", "noexit", "sta", "mta")
_ALIASES = {
    "ec": "encodedcommand",
    "ep": "executionpolicy",
    "ex": "executionpolicy",
    "nop": "noprofile",
    "noni": "noninteractive",
    "c": "command",
    "f": "file",
    "w": "windowstyle",
    "if": "inputformat",
    "of": "outputformat",
    "v": "version",
}
_ALL = ("encodedcommand", "command", "file", *_VALUE_SWITCHES, *_FLAG_SWITCHES)


@dataclass(frozen=True)
class Decoded:
    """What runs: a PowerShell script (from the line, or from stdin when ``script_from_stdin``), or
    ``script`` None for anything that is not PowerShell text. ``error`` is powershell.exe's own
    complaint about its command line (written to stderr, exit ``EXIT_BAD_PARAMETER``)."""

    command_line: str
    script: str | None
    script_from_stdin: bool = False
    error: str | None = None


def full_command_line(command: str, arguments: list[str]) -> str:
    """The process command line: WinRS joins the command and its arguments with spaces."""
    return " ".join([command, *arguments]) if arguments else command


def _switch_name(token: str) -> str | None:
    if not token.startswith(("-", "/")) or len(token) < 2:
        return None
    word = token[1:].lower()
    if word in _ALIASES:
        return _ALIASES[word]
    matches = [name for name in _ALL if name.startswith(word)]
    if word.startswith("e") and "encodedcommand".startswith(word):
        return "encodedcommand"  # PowerShell resolves -e, -en, -enc ... to -EncodedCommand
    return matches[0] if len(matches) == 1 else None


def _is_powershell(program: str) -> bool:
    name = program.strip('"').replace("/", "\\").rsplit("\\", 1)[-1].lower()
    return name in ("powershell", "powershell.exe")


def decode(command_line: str) -> Decoded:
    """Decode a command line (already checked against the length limits)."""
    tokens = list(_TOKEN.finditer(command_line))
    if not tokens or not _is_powershell(tokens[0].group()):
        return Decoded(command_line, None)
    index = 1
    while index < len(tokens):
        token = tokens[index].group()
        name = _switch_name(token)
        if name in _FLAG_SWITCHES:
            index += 1
            continue
        if name in _VALUE_SWITCHES or name == "file":
            if index + 1 >= len(tokens):
                return Decoded(command_line, None, error=f"Missing argument for parameter {token}.")
            if name == "file":
                return Decoded(command_line, None)
            index += 2
            continue
        if name == "encodedcommand":
            if index + 1 >= len(tokens):
                return Decoded(
                    command_line,
                    None,
                    error="Cannot process the command because of a missing "
                    "parameter. A command must follow -EncodedCommand.",
                )
            try:
                raw = base64.b64decode(tokens[index + 1].group(), validate=True)
                return Decoded(command_line, raw.decode("utf-16-le"))
            except (binascii.Error, UnicodeDecodeError, ValueError):
                return Decoded(
                    command_line,
                    None,
                    error="Cannot process the command because the value "
                    "specified with -EncodedCommand is not properly encoded. The value must be "
                    "Base64 encoded.",
                )
        if name == "command":
            rest = command_line[tokens[index].end() :].strip()
            if rest == "-":
                return Decoded(command_line, "", script_from_stdin=True)
            return Decoded(command_line, rest)
        # The first argument that is not a switch starts the command text.
        return Decoded(command_line, command_line[tokens[index].start() :].strip())
    return Decoded(command_line, "", script_from_stdin=True)
