"""`emconsole` with no subcommand: open the console on the configured fleet, or on a demo lab.

Only the config is read before the app starts (its errors belong on stderr, not in a TUI). The
engine, the WinRM backend and — for ``--demo`` — the lab are built by the app's starter, after the
first frame is drawn, so the console appears at once.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emconsole.config import Config
    from emconsole.screens.app import Session, Starter

DEMO_SERVERS = 36
DEMO_SEED = 7
# A few faults so the demo shows what failure looks like (lab fault syntax, see backends/lab/spec.py).
DEMO_FAULTS = "latency=40;wrong-credentials:5;hang:11;refuse:23"


def environment_of(config: Config) -> tuple[str, bool]:
    """The environment label for the top bar, and whether it is production (red accent)."""
    envs = {s.tags.get("environment", "") for s in config.servers} - {""}
    label = ", ".join(sorted(envs)) or "fleet"
    production = any(e.casefold() in ("prod", "production", "live") for e in envs)
    return label, production


async def session_for(
    config: Config, *, environment: str | None = None, close_extra: object = None
) -> Session:
    """Build the engine for a config (imports winrm lazily, off the event loop)."""
    from emconsole.screens.app import Session

    def build() -> Session:
        from emconsole.audit import AuditLog
        from emconsole.backends.winrm.backend import WinRMBackend
        from emconsole.commandlog import CommandLog
        from emconsole.credentials import PasswordSource
        from emconsole.engine import FleetEngine

        passwords = PasswordSource()
        backend = WinRMBackend(
            lambda server: passwords.password(server.password_from or "", server.username or "", server.name)
        )
        engine = FleetEngine(config, backend, audit=AuditLog(config.audit_path), command_log=CommandLog(),
                             read_only=config.read_only or None)
        label, production = environment_of(config)

        async def close() -> None:
            await engine.aclose()
            stop = getattr(close_extra, "stop", None)
            if stop is not None:
                await asyncio.to_thread(stop)

        return Session(engine=engine, environment=environment or label, production=production,
                       refresh_interval=config.refresh_interval, bulk_threshold=config.bulk_confirm_threshold,
                       keymap=dict(config.keymap), theme=config.theme, knowledge=config.knowledge(),
                       close=close)

    return await asyncio.to_thread(build)


def config_starter(config: Config) -> Starter:
    """The starter for the configured fleet."""

    async def start() -> Session:
        return await session_for(config)

    return start


def demo_starter() -> Starter:
    """The starter for ``--demo``: a lab fleet in this process, then the engine on it."""

    async def start() -> Session:
        from emconsole.backends.lab.demo import start_demo_lab  # lab helpers: fleet + matching Config

        fleet, config = await asyncio.to_thread(start_demo_lab, DEMO_SERVERS, DEMO_SEED, DEMO_FAULTS)
        return await session_for(config, environment="demo lab", close_extra=fleet)

    return start


def run(args: argparse.Namespace) -> int:
    """Open the console; returns the exit code."""
    read_only = bool(getattr(args, "read_only", False))
    if getattr(args, "demo", False):
        starter = demo_starter()
    else:
        from emconsole.config import ConfigError, load_config

        try:
            config, _location = load_config(getattr(args, "config", None))
        except ConfigError as exc:
            print(f"emconsole: {exc}", file=sys.stderr)
            return 2
        read_only = read_only or config.read_only
        starter = config_starter(config)
    from emconsole.screens.app import EmConsoleApp

    result = EmConsoleApp(starter, read_only=read_only).run()
    return int(result or 0)
