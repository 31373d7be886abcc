"""The entry point the lab's host calls: run one script text, get stdout, stderr and the exit code.

As ``powershell.exe -NonInteractive -EncodedCommand`` does: a parse error (or a construct outside
the subset) runs nothing and exits 1; each statement's output is rendered as it ends; errors and
warnings go to stderr as CLIXML; ``exit N`` sets the code, otherwise the code is 1 when the last
statement failed (``$?``) or the script was halted by an uncaught error, else 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from emconsole.backends.lab.pwsh.api import ErrorRecord
from emconsole.backends.lab.pwsh.clixml import streams_document
from emconsole.backends.lab.pwsh.commands import register_core
from emconsole.backends.lab.pwsh.interpreter import Interpreter, ScriptExit, ScriptHalt
from emconsole.backends.lab.pwsh.render import NEWLINE, error_text, render
from emconsole.backends.lab.pwsh.session import CommandRegistry, Session
from emconsole.backends.lab.pwsh.templates import Refused, prepare
from emconsole.backends.lab.pwsh.values import local_zone


def new_registry() -> CommandRegistry:
    """A registry holding the generic commands; the Exchange helper registers the rest on it."""
    registry = CommandRegistry()
    register_core(registry)
    return registry


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class RunContext:
    """What one run needs: the server object (for commands), its registry, its environment and clock.

    ``now`` returns the server's current time (aware); the server's local zone is its offset.
    ``variables`` are preset session variables (e.g. none; ``$exscripts`` is set by RemoteExchange.ps1).
    ``session_setup`` may adjust the fresh Session before the script runs (faults, flags).
    """

    server: Any
    registry: CommandRegistry
    env: dict[str, str] = field(default_factory=dict)
    now: Callable[[], datetime] = _utc_now
    utc_offset: timedelta = timedelta(0)
    variables: dict[str, Any] = field(default_factory=dict)
    session_setup: Callable[[Session], None] | None = None


@dataclass(frozen=True)
class ScriptResult:
    stdout: str
    stderr: str
    exit_code: int
    session: Session | None = None


def _parse_failure(record: ErrorRecord) -> ScriptResult:
    return ScriptResult("", streams_document([("Error", error_text(record))]), 1)


def run_script(text: str, *, context: RunContext) -> ScriptResult:
    prepared = prepare(text)
    if isinstance(prepared, Refused):
        return _parse_failure(prepared.record)
    zone = local_zone(context.utc_offset)
    session = Session(context.env)
    session.set_variable("ErrorActionPreference", "Continue")
    session.set_variable("WarningPreference", "Continue")
    for name, value in context.variables.items():
        session.set_variable(name, value)
    if context.session_setup is not None:
        context.session_setup(session)
    interpreter = Interpreter(
        prepared.program,
        source=prepared.source,
        literals=prepared.literals,
        server=context.server,
        registry=context.registry,
        session=session,
        now=lambda: context.now().astimezone(zone),
        local_zone=zone,
    )
    stdout: list[str] = []

    def flush_streams() -> None:
        for stream, payload in interpreter.streams:
            if stream == "host":
                stdout.append(payload.host_output().replace("\n", NEWLINE))
        interpreter.streams[:] = [(s, p) for s, p in interpreter.streams if s != "host"]

    def out_default(items: list[Any]) -> None:
        if not items and not interpreter.streams:  # most statements: nothing to flush or render
            return
        flush_streams()
        stdout.append(render(items))

    exit_code: int | None = None
    try:
        interpreter.run_top(out_default)
    except ScriptExit as done:
        exit_code = done.code
    except ScriptHalt as halt:
        interpreter.emit("error", halt.record)
        exit_code = 1
    flush_streams()
    if exit_code is None:
        exit_code = 0 if interpreter.last_ok else 1
    entries = [
        ("Error" if stream == "error" else "warning", error_text(payload) if stream == "error" else payload)
        for stream, payload in interpreter.streams
    ]
    stderr = streams_document(entries) if entries else ""
    return ScriptResult("".join(stdout), stderr, exit_code, session)
