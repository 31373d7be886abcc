"""Entry point: parse the command line and hand off to one subcommand module.

Subcommand modules are imported lazily so that a headless command never pays for Textual, and the
console never pays for the lab until the demo starts it. Each module in ``COMMANDS`` provides
``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

from emconsole import __version__


class CommandModule(Protocol):
    """What a subcommand module provides."""

    HELP: str
    EPILOG: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


# name -> module (relative to emconsole.cli). Order is the order shown in --help.
COMMANDS: dict[str, str] = {
    "status": "status_cmd",
    "check": "check_cmd",
    "exposure": "exposure_cmd",
    "reapply": "action_cmd",
    "block": "action_cmd",
    "unblock": "action_cmd",
    "delete": "action_cmd",
    "restore": "action_cmd",
    "enable": "action_cmd",
    "disable": "action_cmd",
    "test-ocs": "ocs_cmd",
    "report": "report_cmd",
    "audit": "audit_cmd",
    "discover": "discover_cmd",
    "config": "config_cmd",
    "lab": "lab_cmd",
}

# Help lines shown before a module is imported (keeps `emconsole --help` cheap).
COMMAND_HELP: dict[str, str] = {
    "status": "the fleet's EM state, one row per server (table, JSON, CSV, Markdown)",
    "check": "monitoring check with Nagios/Icinga exit codes and perfdata",
    "exposure": "which servers are fixed, protected or exposed to each CVE, and leftovers",
    "reapply": "restart the EM service so it checks and applies mitigations again",
    "block": "block mitigations (MitigationsBlocked) on servers",
    "unblock": "unblock mitigations on servers",
    "delete": "back up and delete mitigations' artifacts (rules, services, app pools)",
    "restore": "restore a delete's backup on servers",
    "enable": "switch EM on for servers or the organisation",
    "disable": "switch EM off for servers or the organisation",
    "test-ocs": "test the connection to the Office Config Service (read-only)",
    "report": "a point-in-time report for a change ticket or a post-incident review",
    "audit": "the audit log of changes, including outcome-unknown entries",
    "discover": "list the Mailbox servers a seed server knows, as config entries",
    "config": "check the configuration file or show where it is looked for",
    "lab": "serve a lab fleet of emulated Exchange servers over WS-Management",
}


def _load(name: str) -> CommandModule:
    """The module for ``name``; a module serving several commands gives one via ``for_command(name)``."""
    module = importlib.import_module(f"emconsole.cli.{COMMANDS[name]}")
    for_command = getattr(module, "for_command", None)
    if for_command is not None:
        return cast(CommandModule, for_command(name))
    return module


def build_parser(selected: str | None) -> argparse.ArgumentParser:
    """Build the parser; only the selected subcommand's module is imported."""
    parser = argparse.ArgumentParser(
        prog="emconsole",
        description="A fleet console for the Exchange Emergency Mitigation (EM) service.",
        epilog="Run 'emconsole COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"emconsole {__version__}")
    parser.add_argument("--config", metavar="PATH", help="configuration file (default: see 'config path')")
    parser.add_argument("--demo", action="store_true", help="open the console on a built-in lab fleet")
    parser.add_argument("--read-only", action="store_true", help="refuse every change to a server")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if name == selected:
            module = _load(name)
            sp = sub.add_parser(
                name,
                help=COMMAND_HELP[name],
                description=module.HELP,
                epilog=module.EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
            sp.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                            help="configuration file (default: see 'emconsole config path')")
            module.add_arguments(sp)
        else:
            sub.add_parser(name, help=COMMAND_HELP[name], add_help=False)
    return parser


def _selected_command(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if arg in COMMANDS:
            return arg
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run emconsole; returns the process exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    selected = _selected_command(args_list)
    parser = build_parser(selected)
    args = parser.parse_args(args_list)
    try:
        if args.command is None:
            console = importlib.import_module("emconsole.cli.console_cmd")
            return int(console.run(args))
        return _load(args.command).run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
