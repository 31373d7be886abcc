"""What every headless command shares: options, config loading, the engine, errors, progress, time.

Conventions (issue #7): data on stdout, messages on stderr, no traceback for a user error (each
becomes one ``emconsole: ...`` line and an exit code), progress only when stderr is a terminal.
The engine is the console's own (``emconsole.engine``): the same plans, audit and read-only rule.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import io
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, TypeVar

from emconsole.cli.render import is_terminal

if TYPE_CHECKING:
    from emconsole.config import Config, ServerConfig
    from emconsole.engine import FleetEngine, ServerView

T = TypeVar("T")
#: Exit code for a usage or configuration error (argparse uses 2 too).
USAGE_ERROR = 2


class CliError(Exception):
    """A user error: printed as one line on stderr, never as a traceback."""

    def __init__(self, message: str, exit_code: int = USAGE_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def fail(message: str) -> None:
    print(f"emconsole: {message}", file=sys.stderr)


def guarded(error_exit: int = USAGE_ERROR, on_error: Callable[[str], None] | None = None
            ) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Turn every expected error of a command into one stderr line and ``error_exit``
    (``check`` passes 3, and ``on_error`` to print its UNKNOWN status line: a plugin that cannot
    run reports UNKNOWN)."""

    def failed(message: str, code: int) -> int:
        fail(message)
        if on_error is not None:
            on_error(message)
        return code

    def wrap(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        @functools.wraps(run)
        def inner(args: argparse.Namespace) -> int:
            from emconsole.config import ConfigError
            from emconsole.credentials import CredentialError
            from emconsole.engine import PlanError, ReadOnlyError
            from emconsole.selection import SelectionError

            try:
                return run(args)
            except CliError as exc:
                return failed(str(exc), exc.exit_code if error_exit == USAGE_ERROR else error_exit)
            except (ConfigError, CredentialError, SelectionError, PlanError, ReadOnlyError) as exc:
                return failed(str(exc), error_exit)
            except EOFError:
                return failed("no terminal to read from (use --yes, or password_from = \"env:NAME\")",
                              error_exit)
            except BrokenPipeError:  # `emconsole status | head` closed the pipe: not an error
                _silence_stdout()
                return 0
            except OSError as exc:
                return failed(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "), error_exit)

        return inner

    return wrap


def _silence_stdout() -> None:
    """After a closed pipe, point stdout at devnull so the interpreter's final flush stays quiet."""
    with suppress(OSError, ValueError, io.UnsupportedOperation):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


# --------------------------------------------------------------------------- options


def add_selection(parser: argparse.ArgumentParser, *, change: bool = False, org: bool = False) -> None:
    """``--server``, ``--tag``, ``--all``. A change needs one of them; reading defaults to all."""
    title = ("servers (one of these is required; with --org they are the candidates to run it on, "
             "default every server)" if org else
             "servers (one of these is required)" if change else "servers (default: every server)")
    group = parser.add_argument_group(title)
    group.add_argument("-s", "--server", action="append", default=[], metavar="NAME",
                       help="a server by name; globs such as 'EX0*' allowed; repeatable")
    group.add_argument("-t", "--tag", action="append", default=[], metavar="KEY=VALUE",
                       help="servers with this tag (several: all must match); repeatable")
    group.add_argument("--all", action="store_true", dest="all_servers", help="every configured server")


def add_format(parser: argparse.ArgumentParser, choices: Sequence[str], default: str = "table") -> None:
    parser.add_argument("-f", "--format", choices=choices, default=default,
                        help=f"output format (default: {default})")


def add_read_only(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--read-only", action="store_true", default=argparse.SUPPRESS,
                        help="refuse every change (as read_only = true in config)")


def add_since(parser: argparse.ArgumentParser, default: str | None) -> None:
    parser.add_argument("--since", default=default, metavar="WHEN",
                        help="a duration back from now (30m, 24h, 7d, 2w) or a date/time "
                             f"(2026-08-01, 2026-08-01T12:00Z){'; default: ' + default if default else ''}")


_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.I)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """``24h`` / ``7d`` back from now, or an ISO date/time (UTC when no zone is given)."""
    if not text:
        return None
    now = now or datetime.now(timezone.utc)
    match = _DURATION.match(text)
    if match:
        return now - timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"--since {text!r}: give a duration (30m, 24h, 7d) or a date such as "
                       "2026-08-01") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


# --------------------------------------------------------------------------- config and engine


def load(args: argparse.Namespace) -> Config:
    from emconsole.config import load_config

    config, _location = load_config(getattr(args, "config", None))
    return config


def read_only_of(args: argparse.Namespace, config: Config) -> bool:
    return bool(getattr(args, "read_only", False)) or config.read_only


def selected(args: argparse.Namespace, config: Config, *, change: bool = False) -> tuple[ServerConfig, ...]:
    from emconsole.selection import select

    return select(config, args.server, args.tag, all_servers=args.all_servers, default_all=not change)


def make_engine(config: Config, *, read_only: bool) -> FleetEngine:
    """The console's engine over WinRM; ``prompt`` passwords are asked now, on the terminal."""
    from emconsole.audit import AuditLog
    from emconsole.backends.winrm.backend import WinRMBackend
    from emconsole.backends.winrm.settings import password_lookup
    from emconsole.cli.console_cmd import ask_passwords_now
    from emconsole.commandlog import CommandLog
    from emconsole.engine import FleetEngine

    backend = WinRMBackend(password_lookup(ask_passwords_now(config)))
    return FleetEngine(config, backend, audit=AuditLog(config.audit_path),
                       command_log=CommandLog(), read_only=read_only)


@asynccontextmanager
async def engine_for(config: Config, *, read_only: bool) -> AsyncIterator[FleetEngine]:
    engine = make_engine(config, read_only=read_only)
    try:
        yield engine
    finally:
        await engine.aclose()


def run_async(work: Awaitable[T]) -> T:
    return asyncio.run(work)  # type: ignore[arg-type]


class Progress:
    """Progress on stderr, only when stderr is a terminal (never in a pipe or from cron).

    ``per_server``: one ``[3/16] EX03: done`` line per server (changes: the operator must see each
    outcome arrive); otherwise one line rewritten in place (reading 500 servers is not 500 lines).
    """

    def __init__(self, total: int, verb: str, *, per_server: bool = True) -> None:
        self.total, self.verb, self.done, self.per_server = total, verb, 0, per_server
        self.enabled = is_terminal(sys.stderr)

    def step(self, server: str, outcome: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        if self.per_server:
            print(f"[{self.done}/{self.total}] {server}: {outcome}", file=sys.stderr, flush=True)
            return
        end = "\n" if self.done == self.total else ""
        print(f"\r{self.verb} {self.done}/{self.total}", end=end, file=sys.stderr, flush=True)


async def refresh(engine: FleetEngine, names: Sequence[str]) -> list[ServerView]:
    """Read the servers (progress on a terminal); views in config order."""
    progress = Progress(len(names), "reading", per_server=False)
    async for view in engine.refresh(names):
        progress.step(view.name, "read" if view.failure is None else "error")
    wanted = {n.casefold() for n in names}
    return [v for v in engine.views() if v.name.casefold() in wanted]
