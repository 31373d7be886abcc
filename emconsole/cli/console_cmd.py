"""`emconsole` with no subcommand: open the console on the configured fleet, or on a demo lab.

Only the config is read — and ``password_from = "prompt"`` passwords asked — before the app starts
(errors and prompts belong on the terminal, not in a TUI or a worker thread). The
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
    from emconsole.credentials import PasswordSource
    from emconsole.screens.app import Session, Starter


def environment_of(config: Config) -> tuple[str, bool]:
    """The environment label for the top bar, and whether it is production (red accent)."""
    envs = {s.tags.get("environment", "") for s in config.servers} - {""}
    label = ", ".join(sorted(envs)) or "fleet"
    production = any(e.casefold() in ("prod", "production", "live") for e in envs)
    return label, production


def ask_passwords_now(config: Config) -> PasswordSource:
    """Ask every ``password_from = "prompt"`` password before the console starts, once per account.

    Why here: getpass needs the terminal, which the Textual app owns once it runs, and the engine
    connects from worker threads. After this, any further prompt is refused with a clear error
    (it would only happen if a password were forgotten, e.g. after an authentication failure).
    """
    import getpass

    from emconsole.credentials import CredentialError, PasswordSource

    started = False

    def prompt(text: str) -> str:
        if started:
            raise CredentialError("the password prompt is only available before the console starts: "
                                  "restart emconsole, or use password_from = \"env:NAME\" or \"keyring:...\"")
        return getpass.getpass(text)

    passwords = PasswordSource(prompt=prompt)
    for server in config.servers:
        if server.password_from == "prompt" and server.username:
            passwords.password("prompt", server.username, server.name)
    started = True
    return passwords


async def session_for(config: Config, passwords: PasswordSource | None = None, *,
                      environment: str | None = None, close_extra: object = None) -> Session:
    """Build the engine for a config (imports winrm lazily, off the event loop)."""
    from emconsole.screens.app import Session

    def build() -> Session:
        from emconsole.audit import AuditLog
        from emconsole.backends.winrm.process import WorkerProcessBackend
        from emconsole.backends.winrm.settings import password_lookup
        from emconsole.commandlog import CommandLog
        from emconsole.credentials import PasswordSource
        from emconsole.engine import FleetEngine

        # The WinRM calls run in a worker process, off the GIL of the event loop that answers keys.
        backend = WorkerProcessBackend(password_lookup(passwords or PasswordSource()),
                                       concurrency=config.concurrency)
        backend.start()
        knowledge = config.knowledge()
        engine = FleetEngine(config, backend, audit=AuditLog(config.audit_path), command_log=CommandLog(),
                             knowledge=knowledge)
        label, production = environment_of(config)

        async def close() -> None:
            await engine.aclose()
            stop = getattr(close_extra, "stop", None)
            if stop is not None:
                await asyncio.to_thread(stop)

        return Session(engine=engine, environment=environment or label, production=production,
                       refresh_interval=config.refresh_interval, bulk_threshold=config.bulk_confirm_threshold,
                       keymap=dict(config.keymap), theme=config.theme, knowledge=knowledge, close=close)

    return await asyncio.to_thread(build)


#: Between two refreshes, a full collection only after this many of the middle generation
#: (Python's default: 10); the refreshes themselves end with a collection (``GarbageCollection``).
FULL_COLLECTION_AFTER = 100
#: Every this many refreshes the objects frozen before are collected as well.
FROZEN_COLLECTION_EVERY = 20


class GarbageCollection:
    """The console's garbage collection: after each refresh, not at random while keys are typed.

    After each refresh of the fleet (``Session.after_refresh``) the young generations are collected
    and whatever is alive is frozen (moved out of the cyclic collector's sight), so that later
    collections walk only what changed since, and full ones come ten times less often. The first
    time and every ``FROZEN_COLLECTION_EVERY``-th time the frozen objects are unfrozen and collected
    too: the states a refresh replaced are freed by reference counting at once, but cyclic garbage
    among frozen objects (~150 objects a refresh of 500 servers) waits for that. Found by
    bench/ui_load.py (500 servers): full collections took 170-370 ms at random moments with 5,000
    mitigation rows listed; collecting everything after every refresh then still stalled the keys
    typed at its end (50-125 ms), where the young generations take ~7 ms. Not in ``session_for``:
    tests build many apps in one process.
    """

    def __init__(self) -> None:
        self._refreshes = 0

    def __call__(self) -> None:
        import gc

        if self._refreshes % FROZEN_COLLECTION_EVERY == 0:
            gc.unfreeze()
            gc.collect()
        else:
            gc.collect(1)
        self._refreshes += 1
        gc.freeze()
        young, middle, _old = gc.get_threshold()
        gc.set_threshold(young, middle, FULL_COLLECTION_AFTER)


#: Seconds a thread may keep the GIL while another waits for it (Python's default: 0.005).
SWITCH_INTERVAL = 0.001


def favour_the_event_loop() -> None:
    """Let the event loop (keys, frames) win the GIL back from the console's other threads sooner.

    Each turn of the loop gives the GIL up (waiting for input) and a key needs several turns to
    reach the screen. Found by bench/ui_load.py when the WinRM calls still ran on 32 threads of
    this process (two alternating pairs): cursor p50 101/138 -> 51/46 ms cold, 156/115 -> 75/48 ms
    warm. They run in a worker process now; the threads left are the engine's pool threads and the
    pipe's reader (each wakes once per answer) and, with ``--demo``, the lab's event loop.
    """
    sys.setswitchinterval(SWITCH_INTERVAL)


def tuned(session: Session) -> Session:
    """The process-wide settings of a console that runs a fleet: garbage collection, GIL turns."""
    collect = GarbageCollection()
    session.after_refresh = collect
    collect()
    favour_the_event_loop()
    return session


def config_starter(config: Config, passwords: PasswordSource) -> Starter:
    """The starter for the configured fleet."""

    async def start() -> Session:
        return tuned(await session_for(config, passwords))

    return start


def demo_starter() -> Starter:
    """The starter for ``--demo``: the demo lab in this process, then the engine on it."""

    async def start() -> Session:
        from emconsole.backends.lab.demo import start_demo_lab

        lab, config = await asyncio.to_thread(start_demo_lab)
        return tuned(await session_for(config, environment="demo lab", close_extra=lab))

    return start


def run(args: argparse.Namespace) -> int:
    """Open the console; returns the exit code."""
    read_only = bool(getattr(args, "read_only", False))
    if getattr(args, "demo", False):
        starter = demo_starter()
    else:
        from emconsole.config import ConfigError, load_config
        from emconsole.credentials import CredentialError

        try:
            config, _location = load_config(getattr(args, "config", None))
            passwords = ask_passwords_now(config)
        except (ConfigError, CredentialError) as exc:
            print(f"emconsole: {exc}", file=sys.stderr)
            return 2
        except EOFError:
            print('emconsole: no terminal to ask the password on (password_from = "prompt")', file=sys.stderr)
            return 2
        read_only = read_only or config.read_only
        starter = config_starter(config, passwords)
    from emconsole.screens.app import EmConsoleApp

    result = EmConsoleApp(starter, read_only=read_only).run()
    return int(result or 0)
