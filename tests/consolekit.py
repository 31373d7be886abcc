"""The console against a real lab: a small demo lab, the real engine and WinRM backend, helpers to wait.

    def test_x(console_lab):
        lab, config = console_lab(servers=4, faults="refuse:2")
        app = console_app(config)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_refreshed(pilot, app)

The app is built exactly as ``emconsole`` builds it (``console_cmd.session_for``); only the clock is
frozen (ages and the top bar's time) and the timer-driven auto-refresh is off (tests refresh with ``r``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any

import pytest
from emconsole.backends.lab.demo import start_demo_lab
from emconsole.screens.app import EmConsoleApp, Session
from emconsole.screens.fleet import FleetScreen
from textual.pilot import Pilot
from textual.screen import Screen

from emconsole.cli.console_cmd import session_for
from emconsole.config import Config
from emconsole.labconfig import Lab

#: A fleet with one server per kind of exposure cell (M1 is fixed on every build here but the unread
#: one): ``console_lab(servers=6, faults=EXPOSURE_FAULTS, scripted=EXPOSURE_FLEET)``.
EXPOSURE_FLEET: dict[int, dict[str, Any]] = {
    1: {"build": "2019 CU15 Feb26SU"},                                                # protected (M2 applied)
    2: {"build": "2019 CU15 Feb26SU", "applied": ["M2"], "blocked": ["M2"]},          # protected, at risk
    3: {"build": "2019 CU15 Feb26SU", "applied": [], "mitigations_enabled": False},   # exposed: EM off
    4: {"build": "Exchange SE RTM Jul26SU", "applied": ["M2"]},                       # fixed, M2 left over
    5: {"build": "2019 CU15 Feb26SU", "applied": [], "service": "stopped"},           # exposed: service
    6: {"build": "2019 CU15 Feb26SU"},                                                # unknown: not read
}
EXPOSURE_FAULTS = "ems-unavailable:6"
#: What the ``console_lab`` fixture hands a test: ``console_lab(servers=N, faults="...")``.
LabStarter = Callable[..., tuple[Lab, Config]]
#: Before any real refresh time, so every age reads "0s" and the top bar shows 09:00:00.
FROZEN = datetime(2026, 8, 3, 9, 0, 0, tzinfo=timezone.utc)


def console_app(config: Config, *, read_only: bool = False, environment: str = "demo lab") -> EmConsoleApp:
    """The console on a config, with a frozen clock and no timer refresh."""

    async def start() -> Session:
        return await session_for(config, environment=environment)

    return EmConsoleApp(start, read_only=read_only, clock=lambda: FROZEN, live_refresh=False)


async def wait_until(pilot: Pilot[Any], predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    """Let the app run until ``predicate()`` holds (fails the test after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {getattr(predicate, '__name__', 'a condition')}")
        await asyncio.sleep(0.02)
        await pilot.pause()
    await pilot.pause()


async def wait_refreshed(pilot: Pilot[Any], app: EmConsoleApp, timeout: float = 30.0) -> None:
    """Until the engine is up and no refresh is running (and every server has been read once)."""

    def refreshed() -> bool:
        return (app.engine is not None and not app.refreshing
                and all(v.refreshed_at is not None and not v.loading for v in app.views()))

    await wait_until(pilot, refreshed, timeout)


@asynccontextmanager
async def fleet_on(config: Config, size: tuple[int, int]
                   ) -> AsyncIterator[tuple[EmConsoleApp, Pilot[Any], FleetScreen]]:
    """The console on ``config`` at ``size``, its first refresh done, showing the fleet screen."""
    app = console_app(config)
    async with app.run_test(size=size) as pilot:
        await wait_refreshed(pilot, app)
        fleet = app.screen
        assert isinstance(fleet, FleetScreen)
        yield app, pilot, fleet


def count_layouts(monkeypatch: pytest.MonkeyPatch, screen: Screen[Any]) -> list[None]:
    """One entry per layout of the whole ``screen`` from now on (Textual's ``_refresh_layout``)."""
    layouts: list[None] = []
    lay_out = screen._refresh_layout

    def counted(*args: Any, **kwargs: Any) -> None:
        layouts.append(None)
        lay_out(*args, **kwargs)

    monkeypatch.setattr(screen, "_refresh_layout", counted)
    return layouts


def screen_text(app: EmConsoleApp) -> str:
    """What the terminal shows now, as plain text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


@pytest.fixture
def console_lab() -> Iterator[LabStarter]:
    """``console_lab(servers=N, faults="...")`` starts the demo lab shape on a manual lab clock;
    ``scripted={N: {exchange keys}}`` replaces the demo's per-server state (known builds and states),
    ``org={...}`` adds organisation keys."""
    started: list[Lab] = []

    def factory(servers: int = 6, faults: str = "", seed: int = 7,
                scripted: dict[int, dict[str, Any]] | None = None,
                org: dict[str, Any] | None = None) -> tuple[Lab, Config]:
        lab, config = start_demo_lab(servers, seed, faults, clock_rate=None, scripted=scripted, org=org)
        started.append(lab)
        return lab, config

    yield factory
    for lab in started:
        lab.stop()
