"""SVG snapshots of every console screen at 120×40 and 80×24 (pytest-textual-snapshot).

The data is real (the demo lab's shape on a fixed seed, a manual lab clock, the real engine); what
would change from run to run is frozen: the console clock (ages, the top bar), the command log's
start times and durations, the audit records' times and operator, action durations, toasts and
the input cursor blink. Host faults only, so no error text carries the lab's random ports.
Regenerate with ``pytest tests/test_snapshots.py --snapshot-update`` and look at the SVGs.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import consolekit
import pytest
from consolekit import FROZEN, LabStarter, console_app, wait_refreshed, wait_until
from emconsole.backends.lab.demo import start_demo_lab
from emconsole.screens.app import EmConsoleApp
from emconsole.screens.confirm import ConfirmScreen
from emconsole.screens.detail import ServerDetailScreen
from emconsole.screens.results import ResultsScreen
from textual.pilot import Pilot
from textual.widgets import Input

from emconsole.audit import Change
from emconsole.commandlog import CommandLog
from emconsole.config import Config

console_lab = consolekit.console_lab
SIZES = pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
FAULTS = "ems-unavailable:5;ocs-unreachable:4"
Steps = Callable[[Pilot[Any]], Awaitable[None]]


@pytest.fixture(scope="module")
def snap_config() -> Iterator[Config]:
    """One lab for every read-only snapshot (nothing here changes it)."""
    lab, config = start_demo_lab(6, 7, FAULTS, clock_rate=None)
    yield config
    lab.stop()


def freeze(app: EmConsoleApp) -> None:
    """Take what varies between runs out of the picture."""
    app.clear_notifications()
    for box in app.screen.query(Input):
        box.cursor_blink = False
    engine = app.engine
    assert engine is not None
    frozen = CommandLog()
    for i, entry in enumerate(sorted(engine.command_log.entries(), key=lambda e: (e.target, e.script))):
        frozen.add(replace(entry, started=FROZEN + timedelta(seconds=i), duration=0.25))
    engine.command_log = frozen


def steps(*keys: str, until: type | None = None, then: Steps | None = None) -> Steps:
    """run_before: wait for the fleet, press keys, wait for a screen, freeze."""

    async def run(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, EmConsoleApp)
        await wait_refreshed(pilot, app)
        freeze(app)
        await pilot.press(*keys)
        if until is not None:
            await wait_until(pilot, lambda: isinstance(app.screen, until))
        if then is not None:
            await then(pilot)
        freeze(app)
        await pilot.pause()

    return run


async def _mitigation_rows(pilot: Pilot[Any]) -> None:
    screen = pilot.app.screen
    assert isinstance(screen, ServerDetailScreen)
    await wait_until(pilot, lambda: len(screen.grid.row_keys) >= 2)


@SIZES
def test_fleet(snap_compare: Any, snap_config: Config, size: tuple[int, int]) -> None:
    assert snap_compare(console_app(snap_config), terminal_size=size, run_before=steps())


@SIZES
def test_detail(snap_compare: Any, snap_config: Config, size: tuple[int, int]) -> None:
    run = steps("enter", until=ServerDetailScreen, then=_mitigation_rows)
    assert snap_compare(console_app(snap_config), terminal_size=size, run_before=run)


@SIZES
def test_matrix(snap_compare: Any, snap_config: Config, size: tuple[int, int]) -> None:
    assert snap_compare(console_app(snap_config), terminal_size=size, run_before=steps("M"))


@SIZES
def test_mitigation_list(snap_compare: Any, snap_config: Config, size: tuple[int, int]) -> None:
    assert snap_compare(console_app(snap_config), terminal_size=size, run_before=steps("I"))


@SIZES
def test_command_log(snap_compare: Any, snap_config: Config, size: tuple[int, int]) -> None:
    assert snap_compare(console_app(snap_config), terminal_size=size, run_before=steps("C"))


@SIZES
def test_help(snap_compare: Any, snap_config: Config, size: tuple[int, int]) -> None:
    assert snap_compare(console_app(snap_config), terminal_size=size, run_before=steps("question_mark"))


@pytest.fixture(scope="module")
def exposure_config() -> Iterator[Config]:
    """A scripted lab with every kind of exposure cell (read only here)."""
    lab, config = start_demo_lab(6, 7, consolekit.EXPOSURE_FAULTS, clock_rate=None,
                                 scripted=consolekit.EXPOSURE_FLEET)
    yield config
    lab.stop()


@SIZES
def test_exposure(snap_compare: Any, exposure_config: Config, size: tuple[int, int]) -> None:
    """Every kind of cell, worst first; the cursor's cell (EM off on the server) explained below."""
    assert snap_compare(console_app(exposure_config), terminal_size=size, run_before=steps("V"))


@SIZES
def test_exposure_leftover(snap_compare: Any, exposure_config: Config, size: tuple[int, int]) -> None:
    """The cursor on a leftover: what is left over, and the delete ``f`` would start."""
    run = steps("V", "down", "down", "down")
    assert snap_compare(console_app(exposure_config), terminal_size=size, run_before=run)


@SIZES
def test_confirm_bulk_block(snap_compare: Any, snap_config: Config, size: tuple[int, int]) -> None:
    """Four marked servers: the count must be typed; the PowerShell is shown."""

    async def pick_m2(pilot: Pilot[Any]) -> None:
        picker = pilot.app.screen
        for _ in range(picker.ids.index("M2.1.0")):  # type: ignore[attr-defined]
            await pilot.press("down")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen))

    run = steps("space", "space", "space", "space", "b", then=pick_m2)
    assert snap_compare(console_app(snap_config), terminal_size=size, run_before=run)


def _freeze_audit(config: Config) -> None:
    """Give the audit records fixed times, ids and operator (what they say stays as written)."""
    assert config.audit_path is not None
    lines = config.audit_path.read_text(encoding="utf-8").splitlines()
    ids: dict[str, str] = {}
    out: list[str] = []
    for line in lines:
        rec = json.loads(line)
        rec["id"] = ids.setdefault(rec["id"], f"{len(ids):032x}")
        rec["time"] = (FROZEN + timedelta(seconds=len(out))).isoformat()
        rec.update(operator="CONTOSO\\admin", pid=4242)
        if "duration_s" in rec:
            rec["duration_s"] = 0.25
        out.append(json.dumps(rec, sort_keys=True))
    config.audit_path.write_text("\n".join(out) + "\n", encoding="utf-8")


@SIZES
def test_results(snap_compare: Any, console_lab: LabStarter, size: tuple[int, int]) -> None:
    """A real change on two servers (its own lab: it changes it), then its results reopened."""
    _lab, config = console_lab(servers=2)

    async def run(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, EmConsoleApp)
        await wait_refreshed(pilot, app)
        await pilot.press("asterisk", "x")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.click("#run")
        await wait_until(pilot, lambda: isinstance(app.screen, ResultsScreen) and app.screen.run.finished)
        await pilot.press("escape")
        await wait_refreshed(pilot, app)
        assert app.last_run is not None
        timed = (o.model_copy(update={"duration": 0.25}) for o in app.last_run.outcomes)
        app.last_run.outcomes[:] = sorted(timed, key=lambda o: o.server)
        freeze(app)
        await pilot.press("S")
        await pilot.pause()

    assert snap_compare(console_app(config), terminal_size=size, run_before=run)


@SIZES
def test_audit_log(snap_compare: Any, console_lab: LabStarter, size: tuple[int, int]) -> None:
    """The audit log after a change on one server and an intent whose outcome is unknown."""
    _lab, config = console_lab(servers=1)

    async def run(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, EmConsoleApp)
        await wait_refreshed(pilot, app)
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.click("#run")
        await wait_until(pilot, lambda: isinstance(app.screen, ResultsScreen) and app.screen.run.finished)
        await pilot.press("escape")
        assert app.engine is not None
        type(app.engine.audit)(app.engine.audit.path).intents([Change("LAB-EX01", "block", ("M2",))])
        _freeze_audit(config)
        await pilot.press("L")
        freeze(app)
        await pilot.pause()

    assert snap_compare(console_app(config), terminal_size=size, run_before=run)
