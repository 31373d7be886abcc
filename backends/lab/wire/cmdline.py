"""Decode a WinRS command line the way cmd.exe and powershell.exe would see it.

Limits: a line through cmd.exe longer than 8,191 characters is refused by cmd.exe ("The command line
is too long.", exit 1); a process command line over 32,767 characters makes CreateProcess fail
(ERROR_FILENAME_EXCED_RANGE), which WinRS reports as a fault on the Command request.
PowerShell's switches: -EncodedCommand (any prefix from -e, and -ec), -Command (-c; ``-`` reads the
script from stdin), plus the switches that take a value and the ones that do not.
"""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

CMD_EXE_LIMIT = 8191
CREATE_PROCESS_LIMIT = 32767
EXIT_BAD_PARAMETER = 64  # powershell.exe's exit code for a bad command-line parameter

_TOKEN = re.compile(r'"[^"]*"?|\S+')
_SPACES = re.compile(r"\s*")
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


def _resolve(word: str) -> str | None:
    if word in _ALIASES:
        return _ALIASES[word]
    matches = [name for name in _ALL if name.startswith(word)]
    if word.startswith("e") and "encodedcommand".startswith(word):
        return "encodedcommand"  # PowerShell resolves -e, -en, -enc ... to -EncodedCommand
    return matches[0] if len(matches) == 1 else None


# Every word that names a switch (an alias or a prefix of a name), resolved once; any other is none.
_SWITCHES = {
    word: _resolve(word)
    for word in {*_ALIASES, *(name[:end] for name in _ALL for end in range(1, len(name) + 1))}
}


def _switch_name(token: str) -> str | None:
    if not token.startswith(("-", "/")) or len(token) < 2:
        return None
    return _SWITCHES.get(token[1:].lower())


def _is_powershell(program: str) -> bool:
    name = program.strip('"').replace("/", "\\").rsplit("\\", 1)[-1].lower()
    return name in ("powershell", "powershell.exe")


_NOT_ENCODED = (
    "Cannot process the command because the value specified with -EncodedCommand is not properly "
    "encoded. The value must be Base64 encoded."
)


def _script(encoded: str) -> str:
    """The script of an -EncodedCommand value (base64 of UTF-16LE); ValueError if it is not one."""
    return base64.b64decode(encoded, validate=True).decode("utf-16-le")


def _encoded_command(command_line: str, end: int, tokens: Iterator[re.Match[str]]) -> Decoded:
    """The script of -EncodedCommand, whose switch token ends at ``end``; ``tokens`` follow it.

    The value is usually most of the line: it is taken up to the next space and decoded, which
    validates it as base64 (so it holds no whitespace and is exactly the next token) without a
    regular-expression scan over it; anything else is read token by token.
    """
    spaces = _SPACES.match(command_line, end)
    start = spaces.end() if spaces else end
    if start < len(command_line) and command_line[start] != '"':
        stop = command_line.find(" ", start)
        with contextlib.suppress(ValueError):
            return Decoded(command_line, _script(command_line[start : stop if stop >= 0 else None]))
    value = next(tokens, None)
    if value is None:
        return Decoded(
            command_line,
            None,
            error="Cannot process the command because of a missing parameter. A command must follow "
            "-EncodedCommand.",
        )
    try:
        return Decoded(command_line, _script(value.group()))
    except ValueError:  # binascii.Error, UnicodeDecodeError, a str that is not ASCII
        return Decoded(command_line, None, error=_NOT_ENCODED)


def decode(command_line: str) -> Decoded:
    """Decode a command line (already checked against the length limits)."""
    tokens = _TOKEN.finditer(command_line)  # lazily: the tokens after the script's are never read
    first = next(tokens, None)
    if first is None or not _is_powershell(first.group()):
        return Decoded(command_line, None)
    for match in tokens:
        token = match.group()
        name = _switch_name(token)
        if name in _FLAG_SWITCHES:
            continue
        if name in _VALUE_SWITCHES or name == "file":
            if next(tokens, None) is None:
                return Decoded(command_line, None, error=f"Missing argument for parameter {token}.")
            if name == "file":
                return Decoded(command_line, None)
            continue
        if name == "encodedcommand":
            return _encoded_command(command_line, match.end(), tokens)
        if name == "command":
            rest = command_line[match.end() :].strip()
            if rest == "-":
                return Decoded(command_line, "", script_from_stdin=True)
            return Decoded(command_line, rest)
        # The first argument that is not a switch starts the command text.
        return Decoded(command_line, command_line[match.start() :].strip())
    return Decoded(command_line, "", script_from_stdin=True)
