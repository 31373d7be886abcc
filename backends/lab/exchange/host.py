"""``ExchangeHost``: the lab's PowerShellHost — runs a decoded script on one lab Exchange server.

Applies the server's PowerShell-level faults (garbage or truncated output, slow commands) and
encodes the text in the shell's code page, as powershell.exe writes bytes.
"""

from __future__ import annotations

import math
import random
import threading

from emconsole.backends.lab.exchange.commands import build_registry
from emconsole.backends.lab.exchange.org import LabServer, Organisation
from emconsole.backends.lab.host import CommandRequest, HostResult, ShellContext, not_a_program
from emconsole.backends.lab.pwsh.runner import RunContext, run_script
from emconsole.backends.lab.pwsh.session import CommandRegistry
from emconsole.backends.lab.wire.codepage import encode_console


class ExchangeHost:
    """One host for the whole organisation; ``ShellContext.server_name`` picks the server."""

    def __init__(self, org: Organisation) -> None:
        self.org = org
        self._registries: dict[bool, CommandRegistry] = {}
        self._lock = threading.Lock()

    def _registry(self, server: LabServer) -> CommandRegistry:
        loadable = not server.faults.ems_unavailable
        with self._lock:
            if loadable not in self._registries:
                self._registries[loadable] = build_registry(loadable)
            return self._registries[loadable]

    def run(self, request: CommandRequest, context: ShellContext) -> HostResult:
        server = self.org.server(context.server_name)
        if request.script is None:
            return not_a_program(request, context.codepage)
        self.org.sync()
        env = {**server.env, **context.env, "USERNAME": context.username or "labadmin"}
        with server.lock:
            result = run_script(
                request.script,
                context=RunContext(
                    server=server, registry=self._registry(server), env=env, now=self.org.clock.now
                ),
            )
        stdout = encode_console(result.stdout, context.codepage)
        stderr = encode_console(result.stderr, context.codepage) if result.stderr else b""
        faults = server.faults
        if faults.truncate:
            stdout = stdout[: len(stdout) // 2]
        if faults.garbage:
            rng = random.Random(f"{self.org.seed}:{server.name}:{request.script}")
            stdout = bytes(rng.randrange(256) for _ in range(max(64, len(stdout))))
        duration = math.inf if math.isinf(faults.slow_s) else faults.slow_s
        return HostResult(stdout, stderr, result.exit_code, duration)
