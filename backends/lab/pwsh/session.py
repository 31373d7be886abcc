"""Where commands are found and what one script run remembers.

``CommandRegistry`` is built once per lab server (cmdlets by name and alias, scripts by path);
``Session`` lives for one ``powershell.exe`` run: variables, ``$env:``, whether the Exchange shell is
loaded, and the commands a dot-sourced script defined (RemoteExchange.ps1 -> Connect-ExchangeServer).
"""

from __future__ import annotations

from typing import Any

from emconsole.backends.lab.pwsh.api import CmdletSpec


def normalise_path(path: str) -> str:
    """Windows paths compare without case and with either slash."""
    return path.replace("/", "\\").lower()


class CommandRegistry:
    """Emulated commands of one lab server (case-insensitive names) and emulated script files."""

    def __init__(self) -> None:
        #: lower-case name or alias -> command (the interpreter reads it directly, once per command run)
        self.commands: dict[str, CmdletSpec] = {}
        self._scripts: dict[str, CmdletSpec] = {}

    def register(self, spec: CmdletSpec) -> None:
        for name in (spec.name, *spec.aliases):
            self.commands[name.lower()] = spec

    def register_script(self, path: str, spec: CmdletSpec) -> None:
        """A script file (``& path`` / ``. path``); ``spec.name`` is what errors call it."""
        self._scripts[normalise_path(path)] = spec

    def lookup(self, key: str) -> CmdletSpec | None:
        """The command named ``key`` (lower case: names compare without case)."""
        return self.commands.get(key)

    def script(self, path: str) -> CmdletSpec | None:
        return self._scripts.get(normalise_path(path))


class Session:
    """The state of one script run, shared by the interpreter and the commands (``ctx.session``)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        #: lower-case name -> value; compiled scripts read and write it directly (names are lowered
        #: when the script is compiled), everything else through get_variable / set_variable
        self.variables: dict[str, Any] = {}
        #: lower-case name -> (the name as given, value): set_env's entries, made in one pass here
        self._env: dict[str, tuple[str, str]] = {
            key.lower(): (key, value) for key, value in (env or {}).items()
        }
        #: commands a dot-sourced script defined, by lower-case name (read directly, like ``variables``)
        self.commands: dict[str, CmdletSpec] = {}
        #: set by Add-PSSnapin / Connect-ExchangeServer; ``requires_ems`` commands exist only then
        self.ems_loaded = False
        #: what ``[Console]::OutputEncoding`` was set to (None: the console's default code page)
        self.output_encoding: Any = None

    def get_variable(self, name: str, default: Any = None) -> Any:
        return self.variables.get(name.lower(), default)

    def set_variable(self, name: str, value: Any) -> None:
        self.variables[name.lower()] = value

    def get_env(self, name: str) -> str | None:
        entry = self._env.get(name.lower())
        return None if entry is None else entry[1]

    def set_env(self, name: str, value: str) -> None:
        self._env[name.lower()] = (name, value)

    def define_command(self, spec: CmdletSpec) -> None:
        """A command defined by a dot-sourced script (a function in the caller's scope)."""
        for name in (spec.name, *spec.aliases):
            self.commands[name.lower()] = spec

    def lookup(self, key: str) -> CmdletSpec | None:
        """The command named ``key`` (lower case: names compare without case)."""
        return self.commands.get(key)
