"""A host that knows no command at all: the lab's PowerShell with an empty command registry.

For wire tests that want PowerShell's own answers (parse errors, "is not recognized") without an
Exchange organisation behind them.
"""

from __future__ import annotations

from emconsole.backends.lab.host import CommandRequest, HostResult, ShellContext, not_a_program
from emconsole.backends.lab.pwsh.runner import RunContext, run_script
from emconsole.backends.lab.pwsh.session import CommandRegistry
from emconsole.backends.lab.wire.codepage import encode_console


class StubHost:
    """A PowerShellHost whose PowerShell has no commands: every command is "not recognized"."""

    def __init__(self) -> None:
        self._registry = CommandRegistry()

    def run(self, request: CommandRequest, context: ShellContext) -> HostResult:
        if request.script is None:
            return not_a_program(request, context.codepage)
        result = run_script(
            request.script, context=RunContext(server=None, registry=self._registry, env=dict(context.env))
        )
        cp = context.codepage
        return HostResult(
            encode_console(result.stdout, cp), encode_console(result.stderr, cp), result.exit_code
        )
