"""The Exposure view against the real engine and a scripted lab: every kind of cell where it belongs,
the reason under the cursor, the fleet's Exposure column, and the one-key jump from a cell to the
action that closes it — through the normal confirm, checked on the lab's own state afterwards."""

from __future__ import annotations

import consolekit
from consolekit import LabStarter, console_app, fleet_on, screen_text, wait_refreshed, wait_until
from emconsole.screens.app import EmConsoleApp
from emconsole.screens.confirm import ConfirmScreen
from emconsole.screens.detail import ServerDetailScreen
from emconsole.screens.exposure import ExposureScreen, word
from emconsole.screens.fleet import FleetScreen
from emconsole.screens.help import HelpScreen, keys_of
from emconsole.screens.results import ResultsScreen
from textual.pilot import Pilot
from textual.widgets import Button

from emconsole.models import OutcomeStatus

console_lab = consolekit.console_lab
SIZE = (120, 40)
M1, M2 = "CVE-2022-41040", "CVE-2026-42897"
CU14, CU15, SE = "2019 CU14 Feb26SU", "2019 CU15 Feb26SU", "Exchange SE RTM Jul26SU"
OWA, OUTBOUND = "Default Web Site/owa", "system.webServer/rewrite/outboundRules/rule"
INBOUND = "system.webServer/rewrite/rules/rule"
EXPOSURE_COLUMN = 10

SCRIPTED, FAULTS = consolekit.EXPOSURE_FLEET, consolekit.EXPOSURE_FAULTS
#: The view's order: worst first; equal cells in config order, then catalogue order (M1's CVE first).
EXPECTED_ORDER = [
    ("LAB-EX03", M2, "exposed"), ("LAB-EX05", M2, "exposed"), ("LAB-EX02", M2, "at risk"),
    ("LAB-EX04", M2, "leftovers"), ("LAB-EX06", M1, "unknown"), ("LAB-EX06", M2, "unknown"),
    ("LAB-EX01", M2, "protected"),
    *((f"LAB-EX0{n}", M1, "fixed") for n in (1, 2, 3, 4, 5)),
]


def key(server: str, cve: str) -> str:
    return f"{server}\x00{cve}"


def cells(screen: ExposureScreen) -> list[tuple[str, str, str]]:
    """The visible cells as (server, CVE, word), in display order."""
    shown = [screen.cells[k] for k in screen.grid.visible_keys]
    return [(e.server, e.cve, word(e)) for e in shown]


async def open_exposure(pilot: Pilot[None], app: EmConsoleApp) -> ExposureScreen:
    await pilot.press("V")
    await wait_until(pilot, lambda: isinstance(app.screen, ExposureScreen))
    assert isinstance(app.screen, ExposureScreen)
    return app.screen


async def jump(pilot: Pilot[None], app: EmConsoleApp, screen: ExposureScreen, server: str, cve: str,
               title: str) -> list[OutcomeStatus]:
    """Cursor to a cell, ``f``, check the confirm says ``title``, run it; the outcomes."""
    screen.grid.move_cursor(key(server, cve))
    await pilot.pause()
    assert screen.check_action("fix", ()) is True
    await pilot.press("f")
    await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
    assert title in screen_text(app)
    assert app.screen.focused is app.screen.query_one("#cancel", Button)  # the default is still No
    await pilot.click("#run")
    await wait_until(pilot, lambda: isinstance(app.screen, ResultsScreen) and app.screen.run.finished)
    assert isinstance(app.screen, ResultsScreen)
    outcomes = [o.status for o in app.screen.run.outcomes]
    await pilot.press("escape")
    await wait_refreshed(pilot, app)  # the changed server is read back
    return outcomes


async def test_every_kind_of_cell_worst_first_with_its_reason(console_lab: LabStarter) -> None:
    _lab, config = console_lab(servers=6, faults=FAULTS, scripted=SCRIPTED)
    async with fleet_on(config, SIZE) as (app, pilot, fleet):
        column = {k: fleet.grid.row(k)[EXPOSURE_COLUMN].plain for k in fleet.grid.row_keys}
        assert column == {"LAB-EX01": "protected", "LAB-EX02": "M2 at risk", "LAB-EX03": "M2 exposed",
                          "LAB-EX04": "M2 leftovers", "LAB-EX05": "M2 exposed", "LAB-EX06": "?"}
        assert "exposed 2" in screen_text(app)
        assert ("V", "Exposure", True) in keys_of(fleet)  # in the fleet's help (and every screen's)
        fleet.grid.sort_by(EXPOSURE_COLUMN)
        await pilot.pause()
        assert fleet.grid.visible_keys[:4] == ["LAB-EX03", "LAB-EX05", "LAB-EX02", "LAB-EX04"]

        screen = await open_exposure(pilot, app)
        assert cells(screen) == EXPECTED_ORDER
        text = screen_text(app)
        assert "12 cells · exposed 2 · at risk 1 · leftovers 1 · unknown 2" in text
        # The reason of the cell under the cursor (the worst one) and what f would do.
        assert "LAB-EX03 · CVE-2026-42897 (M2) · exposed" in text and "EM is off on this server" in text
        assert "f: Enable EM on LAB-EX03" in text
        expected_panel = {
            ("LAB-EX02", M2): ["blocked (M2", "f: Unblock M2 on LAB-EX02"],
            ("LAB-EX05", M2): ["the EM service is stopped",
                               "f: Reapply (restart the EM service) M2 on LAB-EX05"],
            ("LAB-EX04", M2): ["left over: EEMS M2.1 OWA CSP - outbound",
                               "f: Delete M2 (and block) on LAB-EX04"],
            ("LAB-EX06", M2): ["could not be read", "no action closes it from here"],
            ("LAB-EX01", M2): ["nothing to close", "in place: EEMS M2.1 OWA CSP - outbound"],
            ("LAB-EX01", M1): ["fixed: nothing to close"],
        }
        for (server, cve), words in expected_panel.items():
            screen.grid.move_cursor(key(server, cve))
            await pilot.pause()
            text = screen_text(app)
            assert all(w in text for w in words), (server, cve, text)
            fixable = "f: " in words[-1]
            assert screen.check_action("fix", ()) is (True if fixable else None), (server, cve)
        # D deletes what is shown: available with the leftover in view, not once the filter hides it.
        assert screen.check_action("delete_leftovers", ()) is True
        await pilot.press("slash", *"CVE-2022", "enter")
        await pilot.pause()
        assert {c for _, c, _ in cells(screen)} == {M1}
        assert screen.check_action("delete_leftovers", ()) is None
        await pilot.press("escape")
        # Help lists the view's keys; enter opens the server of the cell.
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        assert "Keys — Exposure" in text and "Fix" in text and "Delete leftovers" in text
        await pilot.press("escape")
        screen.grid.move_cursor(key("LAB-EX05", M2))
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ServerDetailScreen))
        assert app.screen.server_name == "LAB-EX05"
        await pilot.press("escape", "escape")
        assert isinstance(app.screen, FleetScreen)
        # The palette opens the view on one CVE; the fleet's help lists the key.
        await pilot.press("ctrl+p", *"exposure to CVE-2022")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ExposureScreen))
        assert {c for _, c, _ in cells(app.screen)} == {M1}
        assert "filter: CVE-2022-41040" in screen_text(app)


async def test_f_closes_exposed_and_at_risk_cells_verified_on_the_lab(console_lab: LabStarter) -> None:
    lab, config = console_lab(servers=6, faults=FAULTS, scripted=SCRIPTED)
    org = lab.org
    app = console_app(config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_refreshed(pilot, app)
        screen = await open_exposure(pilot, app)

        # At risk because blocked: f unblocks; the cell is plainly protected afterwards.
        done = [OutcomeStatus.DONE]
        assert await jump(pilot, app, screen, "LAB-EX02", M2, "Unblock M2 on LAB-EX02") == done
        assert list(org.server("LAB-EX02").record.blocked) == []
        assert word(screen.cells[key("LAB-EX02", M2)]) == "protected"

        # Exposed because EM is off on the server: f switches it on ...
        assert await jump(pilot, app, screen, "LAB-EX03", M2, "Enable EM on LAB-EX03") == done
        assert org.server("LAB-EX03").record.mitigations_enabled is True
        cell = screen.cells[key("LAB-EX03", M2)]
        assert word(cell) == "exposed" and cell.reasons[0].code.value == "not_applied_yet"
        # ... then f restarts the EM service, whose next check applies M2: the cell is protected.
        pid = org.server("LAB-EX03").windows.service("MSExchangeMitigation").pid
        title = "Reapply (restart the EM service) M2 on LAB-EX03"
        assert await jump(pilot, app, screen, "LAB-EX03", M2, title) == done
        assert org.server("LAB-EX03").windows.service("MSExchangeMitigation").pid != pid

        # Exposed because the EM service is stopped: f restarts it.
        title = "Reapply (restart the EM service) M2 on LAB-EX05"
        assert await jump(pilot, app, screen, "LAB-EX05", M2, title) == done
        service = org.server("LAB-EX05").windows.service("MSExchangeMitigation")
        assert service is not None and service.status == "Running"

        org.advance(11 * 60)  # the restarted services' first check (10 minutes after the start)
        before = {v.name: v.refreshed_at for v in app.views()}
        await pilot.press("r")
        await wait_until(pilot, lambda: all(v.refreshed_at != before[v.name] for v in app.views()))
        await wait_refreshed(pilot, app)
        assert [word(screen.cells[key(s, M2)]) for s in ("LAB-EX03", "LAB-EX05")] == ["protected"] * 2
        assert "M2.1.0" in org.server("LAB-EX03").record.applied
        assert app.engine is not None
        results = [(r["target"], r["action"], r["outcome"]) for r in app.engine.audit.records()
                   if r["kind"] == "result"]
        assert results == [("LAB-EX02", "unblock", "done"), ("LAB-EX03", "enable", "done"),
                           ("LAB-EX03", "reapply", "done"), ("LAB-EX05", "reapply", "done")]


async def test_leftovers_of_two_mitigations_in_one_action_then_org_em_on(console_lab: LabStarter) -> None:
    scripted = {1: {"build": SE, "applied": ["M2"]}, 2: {"build": CU14, "applied": ["M1", "M2"]},
                3: {"build": CU15, "applied": ["M2"]}}
    lab, config = console_lab(servers=3, scripted=scripted, org={"org_mitigations_enabled": False})
    org = lab.org
    app = console_app(config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_refreshed(pilot, app)
        screen = await open_exposure(pilot, app)
        assert [(s, c, w) for s, c, w in cells(screen) if w != "fixed"] == [
            ("LAB-EX02", M2, "at risk"), ("LAB-EX03", M2, "at risk"), ("LAB-EX01", M2, "leftovers"),
            ("LAB-EX02", M1, "leftovers")]

        # Marked cells narrow D down to their leftovers.
        screen.grid.toggle_mark(key("LAB-EX01", M2))
        marked = [(r.mitigation_ids, r.servers) for r in screen.leftover_requests()]
        assert marked == [(("M2",), ("LAB-EX01",))]
        screen.grid.toggle_mark(key("LAB-EX01", M2))
        # Every leftover shown, both mitigations, one confirm, one run, each with its backup.
        await pilot.press("D")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        text = screen_text(app)
        assert "Delete M2, M1 (and block) on 2 servers" in text
        assert "M2 on LAB-EX01" in text and "M1 on LAB-EX02" in text and "backs up" in text
        await pilot.click("#run")
        await wait_until(pilot, lambda: isinstance(app.screen, ResultsScreen) and app.screen.run.finished)
        assert isinstance(app.screen, ResultsScreen)
        outcomes = {o.server: o for o in app.screen.run.outcomes}
        assert {s: o.status for s, o in outcomes.items()} == {"LAB-EX01": OutcomeStatus.DONE,
                                                              "LAB-EX02": OutcomeStatus.DONE}
        await pilot.press("escape")
        await wait_refreshed(pilot, app)
        assert org.server("LAB-EX01").iis.rule_names(OWA, OUTBOUND) == []
        assert org.server("LAB-EX02").iis.rule_names("Default Web Site", INBOUND) == []
        for server, outcome in outcomes.items():
            backup = outcome.backup
            assert backup is not None and backup["artifacts"], server
            files = org.server(server).windows.files
            assert any(str(backup["backup_id"]).lower() in path.lower() for path in files), server
        assert app.engine is not None
        audited = [r for r in app.engine.audit.records() if r["kind"] == "result"]
        assert sorted((r["target"], r["backups"][0]["backup_id"]) for r in audited) == sorted(
            (s, o.backup["backup_id"]) for s, o in outcomes.items() if o.backup)
        assert not any(word(e) == "leftovers" for e in screen.cells.values())
        assert screen.check_action("delete_leftovers", ()) is None

        # At risk because EM is off for the organisation: f switches the organisation on — every
        # server is affected, so the count is typed (bulk threshold 3).
        screen.grid.move_cursor(key("LAB-EX03", M2))
        await pilot.pause()
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        text = screen_text(app)
        assert "Enable EM for the organisation" in text and "affects all 3 servers" in text
        await pilot.press("3")
        await pilot.click("#run")
        await wait_until(pilot, lambda: isinstance(app.screen, ResultsScreen) and app.screen.run.finished)
        await pilot.press("escape")
        await wait_refreshed(pilot, app)
        assert org.directory.org.mitigations_enabled is True
        assert word(screen.cells[key("LAB-EX03", M2)]) == "protected"


async def test_read_only_greys_the_jump_and_the_leftover_delete_out(console_lab: LabStarter) -> None:
    _lab, config = console_lab(servers=6, faults=FAULTS, scripted=SCRIPTED)
    app = console_app(config, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_refreshed(pilot, app)
        screen = await open_exposure(pilot, app)
        assert cells(screen)[0] == ("LAB-EX03", M2, "exposed")
        assert screen.check_action("fix", ()) is None and screen.check_action("delete_leftovers", ()) is None
        await pilot.press("f", "D")
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("question_mark")
        assert "Fix  (unavailable)" in screen_text(app)
        assert app.engine is not None and app.engine.audit.records() == []


async def test_the_view_opened_for_one_cve_shows_only_its_cells(console_lab: LabStarter) -> None:
    """Opened for a CVE (or told one while open), the view filters on it through its filter box, and
    escape shows every cell again."""
    _lab, config = console_lab(servers=6, faults=FAULTS, scripted=SCRIPTED)
    async with fleet_on(config, SIZE) as (app, pilot, _fleet):
        app.action_exposure(M1)
        await wait_until(pilot, lambda: isinstance(app.screen, ExposureScreen) and app.screen.ready)
        screen = app.screen
        assert isinstance(screen, ExposureScreen)
        await wait_until(pilot, lambda: cells(screen) == [c for c in EXPECTED_ORDER if c[1] == M1])
        assert screen.grid.filter_text == M1
        app.action_exposure(M2)
        await pilot.pause()
        assert cells(screen) == [c for c in EXPECTED_ORDER if c[1] == M2]
        await pilot.press("escape")
        assert cells(screen) == EXPECTED_ORDER
