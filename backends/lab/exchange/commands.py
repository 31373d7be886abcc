"""The command registry of one lab server: the interpreter's generic commands plus this package's."""

from __future__ import annotations

from emconsole.backends.lab.exchange import cmd_exchange, cmd_iis, cmd_windows
from emconsole.backends.lab.exchange.cmd_exchange import REMOTE_EXCHANGE, SCRIPT_SPECS
from emconsole.backends.lab.pwsh.runner import new_registry
from emconsole.backends.lab.pwsh.session import CommandRegistry


def build_registry(ems_loadable: bool = True) -> CommandRegistry:
    """Every command a lab Exchange server has; without EMS, RemoteExchange.ps1 is missing."""
    registry = new_registry()
    for spec in (*cmd_exchange.specs(), *cmd_windows.specs(), *cmd_iis.specs()):
        registry.register(spec)
    for path, spec in SCRIPT_SPECS.items():
        if ems_loadable or path != REMOTE_EXCHANGE:
            registry.register_script(path, spec)
    return registry


def script_files(ems_loadable: bool = True) -> list[str]:
    """The script files that exist on the server's disk (Test-Path sees them)."""
    return [p for p in SCRIPT_SPECS if ems_loadable or p != REMOTE_EXCHANGE]
