"""The console's action paths, driven by keys against the real engine, WinRM backend and a lab.

Every change is checked on the lab's own state (its directory and IIS), not on what the console
says; cancel, dry run and read-only are checked by what the lab did NOT receive.
"""

from __future__ import annotations

import consolekit
from consolekit import LabStarter, console_app, screen_text, wait_refreshed, wait_until
from emconsole.screens.app import EmConsoleApp
from emconsole.screens.confirm import ConfirmScreen
from emconsole.screens.detail import ServerDetailScreen
from emconsole.screens.fleet import FleetScreen
from emconsole.screens.picker import MitigationPicker
from emconsole.screens.results import ResultsScreen
from textual.pilot import Pilot
from textual.widgets import Button

from emconsole.engine import ReadOnlyError
from emconsole.labconfig import Lab
from emconsole.models import ActionKind, ActionRequest, OutcomeStatus

console_lab = consolekit.console_lab
SIZE = (120, 40)
M2_RULE = "EEMS M2.1 OWA CSP - outbound"


def m2_rules(lab: Lab, server: str) -> list[str]:
    """The M2 outbound rule on the lab server's OWA, as IIS holds it."""
    iis = lab.org.server(server).iis
    return iis.rule_names("Default Web Site/owa", "system.webServer/rewrite/outboundRules/rule")


def blocked(lab: Lab, server: str) -> list[str]:
    return list(lab.org.server(server).record.blocked)


def changes_sent(app: EmConsoleApp) -> list[str]:
    """Scripts other than the status read that reached a server (the command log keeps them all)."""
    assert app.engine is not None
    return [e.script for e in app.engine.command_log.entries() if "$Operation = 'status'" not in e.script]


async def open_results(pilot: Pilot[None], app: EmConsoleApp) -> ResultsScreen:
    await wait_until(pilot, lambda: isinstance(app.screen, ResultsScreen) and app.screen.run.finished)
    assert isinstance(app.screen, ResultsScreen)
    return app.screen


async def test_block_from_the_fleet_is_confirmed_run_and_verified_on_the_lab(console_lab: LabStarter) -> None:
    lab, config = console_lab(servers=4)
    app = console_app(config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_refreshed(pilot, app)
        assert blocked(lab, "LAB-EX01") == []
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, MitigationPicker))
        picker = app.screen
        assert isinstance(picker, MitigationPicker)
        for _ in range(picker.ids.index("M2.1.0")):
            await pilot.press("down")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        text = screen_text(app)
        assert "Block M2.1.0 on LAB-EX01" in text and "PowerShell (LAB-EX01)" in text
        assert app.screen.focused is app.screen.query_one("#cancel", Button)  # the default is No
        await pilot.click("#run")
        results = await open_results(pilot, app)
        assert [o.status for o in results.run.outcomes] == [OutcomeStatus.DONE]
        assert "M2" in blocked(lab, "LAB-EX01")
        await pilot.press("escape")
        await wait_refreshed(pilot, app)
        assert isinstance(app.screen, FleetScreen)
        row = app.screen.grid.row("LAB-EX01")
        assert row is not None and "M2" in row[8].plain  # the Blocked column
        # Reopenable, and in the audit log with its verified outcome.
        await pilot.press("S")
        assert isinstance(app.screen, ResultsScreen)
        await pilot.press("escape", "L")
        await pilot.pause()
        assert "block" in screen_text(app) and "done" in screen_text(app)


async def test_delete_from_the_detail_removes_the_rule_and_blocks_it(console_lab: LabStarter) -> None:
    lab, config = console_lab(servers=2)
    assert m2_rules(lab, "LAB-EX01") == [M2_RULE]
    app = console_app(config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_refreshed(pilot, app)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ServerDetailScreen))
        detail = app.screen
        assert isinstance(detail, ServerDetailScreen)
        await wait_until(pilot, lambda: "M2.1.0" in detail.grid.row_keys)
        detail.grid.move_cursor("M2.1.0")
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Delete M2.1.0 (and block) on LAB-EX01" in screen_text(app)
        await pilot.click("#run")
        results = await open_results(pilot, app)
        assert results.run.outcomes[0].status is OutcomeStatus.DONE, results.run.outcomes[0].detail
    assert m2_rules(lab, "LAB-EX01") == []
    assert any(b.startswith("M2") for b in blocked(lab, "LAB-EX01"))


async def test_cancel_and_dry_run_send_nothing(console_lab: LabStarter) -> None:
    lab, config = console_lab(servers=2)
    app = console_app(config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_refreshed(pilot, app)
        await pilot.press("x")  # disable EM on LAB-EX01
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen))
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("w")  # dry run
        results = await open_results(pilot, app)
        assert results.run.dry_run and "DRY RUN" in screen_text(app)
        assert all("nothing was sent" in o.detail for o in results.run.outcomes)
        assert changes_sent(app) == []
        assert app.engine is not None and app.engine.audit.records() == []
    assert lab.org.server("LAB-EX01").record.mitigations_enabled is True


async def test_bulk_change_needs_the_server_count_typed(console_lab: LabStarter) -> None:
    lab, config = console_lab(servers=4)
    app = console_app(config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_refreshed(pilot, app)
        await pilot.press("asterisk")  # mark every visible server
        assert "4 marked" in screen_text(app)
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        run = app.screen.query_one("#run", Button)
        assert run.disabled and "Type 4 to confirm" in screen_text(app)
        await pilot.press("3")
        assert run.disabled
        await pilot.press("backspace", "4")
        assert not run.disabled
        await pilot.click("#run")
        results = await open_results(pilot, app)
        assert sorted(o.server for o in results.run.outcomes) == [f"LAB-EX0{i}" for i in range(1, 5)]
        assert {o.status for o in results.run.outcomes} == {OutcomeStatus.DONE}
    assert [lab.org.server(f"LAB-EX0{i}").record.mitigations_enabled for i in range(1, 5)] == [False] * 4


async def test_organisation_switch_runs_once_after_the_typed_count(console_lab: LabStarter) -> None:
    lab, config = console_lab(servers=3)
    app = console_app(config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_refreshed(pilot, app)
        await pilot.press("X")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "organisation-wide, run once on LAB-EX01" in screen_text(app)
        await pilot.press("3")
        await pilot.click("#run")
        results = await open_results(pilot, app)
        assert [(o.server, o.status) for o in results.run.outcomes] == [("LAB-EX01", OutcomeStatus.DONE)]
        await pilot.press("escape")
        await wait_refreshed(pilot, app)
        assert "off (org)" in screen_text(app)
    assert lab.org.directory.org.mitigations_enabled is False


async def test_reapply_restarts_the_em_service(console_lab: LabStarter) -> None:
    lab, config = console_lab(servers=1)
    service = lab.org.server("LAB-EX01").windows.service("MSExchangeMitigation")
    assert service is not None
    pid = service.pid
    app = console_app(config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_refreshed(pilot, app)
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.click("#run")
        results = await open_results(pilot, app)
        assert results.run.outcomes[0].status is OutcomeStatus.DONE, results.run.outcomes[0].detail
        await pilot.press("escape")
        await wait_refreshed(pilot, app)
        assert isinstance(app.screen, FleetScreen)
        row = app.screen.grid.row("LAB-EX01")
        assert row is not None and row[-1].plain.startswith("pending next EM check")  # the Error column
    assert service.pid != pid


async def test_ocs_test_fills_the_ocs_column(console_lab: LabStarter) -> None:
    _lab, config = console_lab(servers=2, faults="ocs-unreachable:2")
    app = console_app(config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_refreshed(pilot, app)
        await pilot.press("asterisk", "o")
        await wait_until(pilot, lambda: len(app.ocs_results) == 2)
        assert {name: r.ok for name, r in app.ocs_results.items()} == {"LAB-EX01": True, "LAB-EX02": False}
        await pilot.pause()
        assert "✗ test" in screen_text(app)


async def test_read_only_greys_actions_out_and_the_engine_refuses(console_lab: LabStarter) -> None:
    lab, config = console_lab(servers=2)
    app = console_app(config, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_refreshed(pilot, app)
        assert "READ-ONLY" in screen_text(app)
        assert app.screen.check_action("block", ()) is None  # greyed in the footer, key blocked
        await pilot.press("b", "x", "X")
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        await pilot.press("question_mark")
        assert "Block  (unavailable)" in screen_text(app)
        await pilot.press("escape")
        # Even a path around the keys is refused by the engine, and said so.
        app.start_action(ActionKind.DISABLE, ["LAB-EX01"])
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        assert app.engine is not None
        try:
            app.engine.plan(ActionRequest(kind=ActionKind.DISABLE, servers=("LAB-EX01",)))
        except ReadOnlyError:
            pass
        else:
            raise AssertionError("the engine planned a change in read-only mode")
        assert changes_sent(app) == []
    assert lab.org.server("LAB-EX01").record.mitigations_enabled is True
