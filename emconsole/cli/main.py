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
from typing import Protocol

from emconsole import __version__


class CommandModule(Protocol):
    """What a subcommand module provides."""

    HELP: str
    EPILOG: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


# name -> module (relative to emconsole.cli). Order is the order shown in --help.
COMMANDS: dict[str, str] = {
    "config": "config_cmd",
    "lab": "lab_cmd",
}

# Help lines shown before a module is imported (keeps `emconsole --help` cheap).
COMMAND_HELP: dict[str, str] = {
    "config": "check the configuration file or show where it is looked for",
    "lab": "serve a lab fleet of emulated Exchange servers over WS-Management",
}


def _load(name: str) -> CommandModule:
    module = importlib.import_module(f"emconsole.cli.{COMMANDS[name]}")
    return module  # type: ignore[return-value]


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
