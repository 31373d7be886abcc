"""Each console screen against the real engine and a lab: rows fill in, errors show, habits hold."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import ClassVar

import consolekit
import pytest
from consolekit import (
    LabStarter,
    console_app,
    count_layouts,
    fleet_on,
    screen_text,
    wait_refreshed,
    wait_until,
)
from emconsole.screens import app as app_module
from emconsole.screens.base import FilterBox, KeysFooter, TopBar
from emconsole.screens.detail import ServerDetailScreen
from emconsole.screens.fleet import FleetScreen
from emconsole.screens.format import LOADING
from emconsole.screens.grid import Column, Grid
from emconsole.screens.help import HelpScreen
from emconsole.screens.logs import AuditLogScreen, CommandLogScreen, TextViewer
from emconsole.screens.matrix import MatrixScreen, MitigationListScreen
from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Input
from textual.widgets._footer import FooterKey

from emconsole import exposure as exposure_module
from emconsole.audit import Change

console_lab = consolekit.console_lab
SIZE = (120, 40)


async def test_rows_load_one_by_one_and_a_faulty_server_shows_its_error(console_lab: LabStarter) -> None:
    _lab, config = console_lab(servers=4, faults="refuse:2;ems-unavailable:3;slow=2:4")
    app = console_app(config)
    async with app.run_test(size=SIZE) as pilot:
        fleet = app.screen
        assert isinstance(fleet, FleetScreen)
        # The slow server is still loading while the others already show their data or error.
        await wait_until(pilot, lambda: all(v.refreshed_at is not None for v in app.views()[:3]))
        slow = fleet.grid.row("LAB-EX04")
        assert slow is not None and slow[11].plain == LOADING and "loading" in slow[12].plain
        await wait_refreshed(pilot, app)
        refused, no_ems, ok = (fleet.grid.row(f"LAB-EX0{i}") for i in (2, 3, 1))
        assert refused is not None and no_ems is not None and ok is not None
        assert refused[0].plain == "✖" and "unreachable" in refused[12].plain
        assert no_ems[0].plain == "✖" and "Exchange Management Shell could not be loaded" in no_ems[12].plain
        assert ok[0].plain == "●" and ok[12].plain == "" and ok[3].plain.split()[0] in ("2016", "2019", "SE")
        assert "errors 2" in screen_text(app)
        # The detail of the failed server shows the whole error.
        fleet.grid.move_cursor("LAB-EX03")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ServerDetailScreen))
        assert "Last error (ems_not_loadable)" in screen_text(app)


async def test_filter_sort_marks_and_cursor_survive_a_refresh(console_lab: LabStarter) -> None:
    _lab, config = console_lab(servers=5)
    async with fleet_on(config, SIZE) as (app, pilot, fleet):
        await pilot.press("slash", *"EX0[124]", "enter")
        await pilot.press("s", "s", "s", "s")  # health ▲, health ▼, server ▲, server ▼
        await pilot.pause()
        assert fleet.grid.visible_keys == ["LAB-EX04", "LAB-EX02", "LAB-EX01"]
        assert fleet.grid.cursor_key == "LAB-EX01"  # the cursor stays on its row through sorting
        await pilot.press("up", "space")  # marks LAB-EX02, the cursor moves on to LAB-EX01
        status = screen_text(app)
        assert "filter: EX0[124] (3 of 5)" in status and "sort: Server ▼" in status and "1 marked" in status
        before = {v.name: v.refreshed_at for v in app.views()}
        await pilot.press("r")
        await wait_until(pilot, lambda: all(v.refreshed_at != before[v.name] for v in app.views()))
        await wait_refreshed(pilot, app)
        assert fleet.grid.visible_keys == ["LAB-EX04", "LAB-EX02", "LAB-EX01"]
        assert fleet.grid.marks == {"LAB-EX02"} and fleet.grid.cursor_key == "LAB-EX01"
        assert fleet.grid.filter_text == "EX0[124]" and "1 marked" in screen_text(app)
        await pilot.press("slash", *["backspace"] * 8, "exclamation_mark", *"EX01", "enter")
        await pilot.pause()
        assert "LAB-EX01" not in fleet.grid.visible_keys and fleet.grid.match_count == 4


async def test_snapshots_reach_the_rows_in_batches(console_lab: LabStarter,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Snapshots wait for the next batch (the newest of a server wins); a row turning "loading" shows
    it in its age and keeps the rest; a new state makes every cell again. Many handed over at once
    go in slices, with a turn of the event loop (a key's) between them."""
    _lab, config = console_lab(servers=3)
    async with fleet_on(config, SIZE) as (app, _pilot, fleet):
        assert app.engine is not None
        view = app.engine.view("LAB-EX02")
        assert view.state is not None
        before = fleet.grid.row("LAB-EX02")
        assert before is not None and before[11].plain != LOADING
        app.publish(replace(view, loading=True, busy="first"))
        app.publish(replace(view, loading=True))
        assert fleet.grid.row("LAB-EX02") == before  # not handed over yet
        await app.hand_over()
        loading = fleet.grid.row("LAB-EX02")
        assert loading is not None and loading[11].plain == LOADING and "first" not in loading[12].plain
        assert [c.plain for i, c in enumerate(loading) if i != 11] == [
            c.plain for i, c in enumerate(before) if i != 11]
        blocked = view.state.model_copy(update={"blocked": ("M9",)})
        app.publish(replace(view, state=blocked))
        await app.hand_over()
        row = fleet.grid.row("LAB-EX02")
        assert row is not None and row[8].plain == "M9" and row[11].plain != LOADING

        monkeypatch.setattr(app_module, "UPDATE_SLICE", 0.0)  # one snapshot per slice
        views = app.engine.views()
        for one in views:
            app.publish(replace(one, busy="catching up"))
        left_between: list[int] = []
        handing = asyncio.ensure_future(app.hand_over())
        asyncio.get_running_loop().call_soon(lambda: left_between.append(len(app._pending)))
        await handing
        assert left_between and 0 < left_between[0] < len(views), left_between
        rows = [fleet.grid.row(v.name) for v in views]
        assert not app._pending and all(row is not None and "catching up" in row[12].plain for row in rows)


async def test_a_refresh_that_finds_nothing_new_makes_no_cells_again(console_lab: LabStarter,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A state read again (a new object) that says what the last one said keeps its row's cells and
    exposure cells; a server whose state changed gets its cells made again, and shows it."""
    lab, config = console_lab(servers=3)
    async with fleet_on(config, SIZE) as (app, pilot, fleet):
        made: list[str] = []
        make = fleet._make_cells
        monkeypatch.setattr(fleet, "_make_cells", lambda view: made.append(view.name) or make(view))
        assessed: list[str] = []
        assess = exposure_module.assess_fleet
        monkeypatch.setattr(exposure_module, "assess_fleet",
                            lambda views, *a: assessed.extend(v.name for v in views) or assess(views, *a))
        lab.org.server("LAB-EX02").record.blocked = ["M7"]
        before = {v.name: v.state for v in app.views()}
        await pilot.press("r")
        await wait_until(pilot, lambda: all(v.state is not before[v.name] for v in app.views()))
        await wait_refreshed(pilot, app)
        assert made == ["LAB-EX02"] and assessed == ["LAB-EX02"]
        row = fleet.grid.row("LAB-EX02")
        assert row is not None and row[8].plain == "M7"


async def test_rows_wait_while_keys_come_and_follow_once_they_stop(
        console_lab: LabStarter, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the operator types, a batch of server updates waits (the frame a key needs holds only
    its own change); it is shown once no key came for KEY_QUIET_S, and a refresh's end shows all."""
    _lab, config = console_lab(servers=3)
    async with fleet_on(config, SIZE) as (app, pilot, fleet):
        assert app.engine is not None
        view = app.engine.view("LAB-EX02")
        assert view.state is not None

        def blocked_shown() -> bool:
            row = fleet.grid.row("LAB-EX02")
            return row is not None and row[8].plain == "M9"

        monkeypatch.setattr(app_module, "KEY_QUIET_S", 30.0)
        await pilot.press("down")
        app.publish(replace(view, state=view.state.model_copy(update={"blocked": ("M9",)})))
        await asyncio.sleep(4 * app_module.UPDATE_INTERVAL)  # the batch's turn came and went
        assert not blocked_shown()
        await app.hand_over()
        assert blocked_shown()
        monkeypatch.setattr(app_module, "KEY_QUIET_S", 0.3)
        started = time.monotonic()
        await pilot.press("up")
        app.publish(replace(view, state=view.state.model_copy(update={"blocked": ("M8",)})))
        await wait_until(pilot, lambda: fleet.grid.row("LAB-EX02")[8].plain == "M8")  # type: ignore[index]
        assert time.monotonic() - started >= 0.3


async def test_a_key_counts_once_queued_and_has_its_frame_before_more_rows(
        console_lab: LabStarter, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key still in the app's queue already counts as typing (a batch that started before the app
    reached it held it a slice and a frame), and a refresh's final hand-over of rows waits for the
    frame of a key typed meanwhile before its next slice."""
    _lab, config = console_lab(servers=3)
    async with fleet_on(config, SIZE) as (app, _pilot, fleet):
        assert app.engine is not None and app.typing_for() == 0
        app.post_message(events.Key("down", None))
        assert app.typing_for() > 0  # queued, not handled yet
        await asyncio.sleep(2 * app_module.KEY_QUIET_S)
        monkeypatch.setattr(app_module, "UPDATE_SLICE", 0.0)  # one snapshot per slice
        monkeypatch.setattr(app_module, "KEY_FRAME_S", 1.0)
        monkeypatch.setattr(app_module, "KEY_QUIET_S", 30.0)  # no batch of its own meanwhile
        views = app.engine.views()
        for one in views:
            app.publish(replace(one, busy="catching up"))
        cursor = fleet.grid.cursor_index
        handing = asyncio.ensure_future(app.hand_over())
        await asyncio.sleep(0)  # its first slice
        app.post_message(events.Key("up" if cursor else "down", None))
        await asyncio.sleep(0.2)
        assert app._pending and fleet.grid.cursor_index != cursor  # the key first, the rows wait
        await handing
        rows = [fleet.grid.row(v.name) for v in views]
        assert not app._pending and all(row is not None and "catching up" in row[12].plain for row in rows)


async def test_the_pause_after_a_key_counts_from_its_frame(console_lab: LabStarter,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator types on after seeing a key's effect: a key slow to show (the event loop busy,
    here blocked) does not use up the pause that lets the rows and the top bar in."""
    _lab, config = console_lab(servers=3)
    async with fleet_on(config, SIZE) as (app, pilot, fleet):
        await pilot.press("slash")
        await wait_until(pilot, lambda: fleet.focused is not None and fleet.focused.id == "filter")
        monkeypatch.setattr(app_module, "KEY_QUIET_S", 0.5)
        await asyncio.sleep(0.6)
        app.post_message(events.Key("x", "x"))  # the filter box takes it: it goes no further
        time.sleep(0.3)  # the key waits in the queue, unseen
        assert app.typing_for() < 0.25
        await wait_until(pilot, lambda: app.typing_for() > 0.35, timeout=3.0)


async def test_a_filter_character_and_its_rows_share_a_frame(console_lab: LabStarter) -> None:
    """The table's filter follows the box in the turn the text changed, not a few turns later
    through a message (then the character and the rows were two frames)."""
    _lab, config = console_lab(servers=3)
    async with fleet_on(config, SIZE) as (_app, pilot, fleet):
        await pilot.press("slash")
        box = fleet.query_one("#filter", FilterBox)
        box.value = "EX02"
        assert fleet.grid.filter_text == "EX02" and fleet.grid.visible_keys == ["LAB-EX02"]
        await pilot.press("escape")
        assert fleet.grid.filter_text == "" and len(fleet.grid.visible_keys) == 3


async def test_the_top_bar_and_the_ages_wait_while_keys_come(console_lab: LabStarter,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """As the rows: while the operator types, the top bar's progress is not redrawn (it shows the
    latest once no key came for KEY_QUIET_S) and the ages do not tick."""
    _lab, config = console_lab(servers=3)
    async with fleet_on(config, SIZE) as (app, pilot, fleet):
        monkeypatch.setattr(app_module, "KEY_QUIET_S", 0.5)
        app.refreshing, app.refresh_total, app.refresh_done = True, 3, 0  # as _run_refresh sets them
        app._publish_status()
        assert "⟳ 0/3" in screen_text(app)
        ticked: list[int] = []
        monkeypatch.setattr(fleet.grid, "set_cells", lambda column, values: ticked.append(column))
        typed = time.monotonic()  # the key comes after this
        await pilot.press("down")
        app.refresh_done = 1
        app._publish_status_soon()  # as each server's answer does
        fleet._tick()
        await asyncio.sleep(3 * app_module.STATUS_INTERVAL)
        assert "⟳ 0/3" in screen_text(app) and ticked == []
        await wait_until(pilot, lambda: "⟳ 1/3" in screen_text(app))
        assert time.monotonic() - typed >= 0.5 - app_module.MIN_TIMER_S  # a wait that short is none
        fleet._tick()
        assert ticked
        app.refreshing = False
        app._publish_status()


async def test_matrix_and_mitigation_list_follow_the_servers(console_lab: LabStarter) -> None:
    lab, config = console_lab(servers=3)
    app = console_app(config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_refreshed(pilot, app)
        await pilot.press("M")
        assert isinstance(app.screen, MatrixScreen)
        matrix = app.screen
        await wait_until(pilot, lambda: matrix.grid.row("M2") is not None)
        row = matrix.grid.row("M2")
        assert row is not None
        applied = {f"LAB-EX0{i}": "M2.1.0" in lab.org.server(f"LAB-EX0{i}").record.applied for i in (1, 2, 3)}
        assert [cell.plain == "A" for cell in row[1:]] == list(applied.values())
        await pilot.press("escape", "I")
        assert isinstance(app.screen, MitigationListScreen)
        listing = app.screen
        await pilot.pause()
        total = len(listing.grid.row_keys)
        assert total >= 3
        await pilot.press("slash", *"M2", "enter")
        await pilot.pause()
        assert listing.grid.match_count == sum(applied.values())
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ServerDetailScreen))


async def test_command_log_shows_each_script_and_its_output(console_lab: LabStarter) -> None:
    _lab, config = console_lab(servers=2, faults="wrong-credentials:2")
    app = console_app(config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_refreshed(pilot, app)
        await pilot.press("C")
        assert isinstance(app.screen, CommandLogScreen)
        log = app.screen
        await wait_until(pilot, lambda: len(log.grid.row_keys) == 2)
        text = screen_text(app)
        assert "LAB-EX01" in text and "LAB-EX02" in text and "wrong credentials" in text
        log.grid.move_cursor(next(k for k in log.grid.row_keys if log.grid.row(k)[1].plain == "LAB-EX01"))
        await pilot.press("enter")
        assert isinstance(app.screen, TextViewer)
        shown = str(app.screen.body)
        assert "$Operation = 'status'" in shown and '"operation":"status"' in shown
        await pilot.press("escape", "escape")
        assert isinstance(app.screen, FleetScreen)


async def test_audit_log_lists_changes_newest_first_with_unknown_outcomes(console_lab: LabStarter) -> None:
    _lab, config = console_lab(servers=1)
    assert config.audit_path is not None
    app = console_app(config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_refreshed(pilot, app)
        assert app.engine is not None
        audit = app.engine.audit
        # An intent whose result never came (a crash mid-change, in another process).
        other = type(audit)(audit.path)
        other.intents([Change("LAB-EX01", "disable")])
        await pilot.press("L")
        assert isinstance(app.screen, AuditLogScreen)
        await pilot.pause()
        assert "outcome unknown" in screen_text(app)


async def test_help_lists_the_keys_and_production_looks_different_everywhere(console_lab: LabStarter) -> None:
    _lab, config = console_lab(servers=1)
    production = tuple(s.model_copy(update={"tags": {"environment": "production"}}) for s in config.servers)
    app = console_app(config.model_copy(update={"servers": production}), environment="")
    async with app.run_test(size=SIZE) as pilot:
        await wait_refreshed(pilot, app)
        assert "production" in screen_text(app) and app.has_class("-production")
        accent = app.screen.query_one(TopBar).styles.background
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        assert "Keys — Fleet" in text and "Block" in text and "Filter" in text
        await pilot.press("escape", "enter")
        assert app.screen.query_one(TopBar).styles.background == accent  # a screen pushed later too
        await pilot.press("question_mark")
        assert "Keys — LAB-EX01" in screen_text(app)


async def test_palette_keymap_and_a_failing_worker(console_lab: LabStarter) -> None:
    _lab, config = console_lab(servers=2)
    app = console_app(config.model_copy(update={"keymap": {"table.filter": "f"}}))
    async with app.run_test(size=SIZE) as pilot:
        await wait_refreshed(pilot, app)
        await pilot.press("ctrl+p", *"server LAB-EX02")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ServerDetailScreen))
        assert app.screen.server_name == "LAB-EX02"
        await pilot.press("escape", "f")  # the filter key, remapped by binding id from the config
        assert app.screen.focused is not None and app.screen.focused.id == "filter"
        await pilot.press("escape")
        # A worker that raises becomes a notification and a command-log entry; the app stays up.
        app.refresh_fleet(["NO-SUCH-SERVER"])
        await wait_until(pilot, lambda: not app.refreshing)
        assert app.engine is not None
        console = [e for e in app.engine.command_log.entries() if e.target == "(console)"]
        assert console and "NO-SUCH-SERVER" in console[0].raw_output
        assert any("NO-SUCH-SERVER" in str(n.message) for n in app._notifications)
        assert isinstance(app.screen, FleetScreen)


async def test_the_filter_box_opens_beside_the_status_line_and_the_table_keeps_its_size(
        console_lab: LabStarter, monkeypatch: pytest.MonkeyPatch) -> None:
    """`/` and escape lay the screen out once each (the box appears, then goes, on the status
    line's row); the table below keeps its place and size, and the footer keeps its keys, greyed
    while the box has the letters."""
    _lab, config = console_lab(servers=3)
    async with fleet_on(config, SIZE) as (_app, pilot, fleet):
        table, keys = fleet.grid.region, [key.region for key in fleet.query(FooterKey)]
        layouts = count_layouts(monkeypatch, fleet)
        await pilot.press("slash")
        await pilot.pause()
        box = fleet.query_one("#filter", FilterBox)
        assert box.has_focus and box.region.y == fleet.query_one("#statusline").region.y
        assert fleet.grid.region == table and len(layouts) == 1
        assert [key.region for key in fleet.query(FooterKey)] == keys
        assert any(key.description == "Mark" and key.has_class("-disabled") for key in fleet.query(FooterKey))
        await pilot.press("E", "X", "escape")
        await pilot.pause()
        assert not box.display and fleet.grid.has_focus and fleet.grid.region == table and len(layouts) == 2
        assert not any(key.has_class("-disabled") for key in fleet.query(FooterKey))


class _FooterApp(App[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("x", "go", "Go")]
    allowed = True

    def compose(self) -> ComposeResult:
        yield Grid([Column("name", "Server")])
        yield Input(id="box")
        yield KeysFooter()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return None if action == "go" and not self.allowed else True  # None: shown greyed out

    def action_go(self) -> None:
        """Nothing: the footer only shows it."""

    def action_more(self) -> None:
        """Nothing: bound later, to a key the footer never showed."""


def _footer_keys(app: App[None]) -> list[tuple[str, bool]]:
    """The footer's keys on screen but the palette's (always there): (description, greyed out)."""
    keys = [(key.description, key.has_class("-disabled")) for key in app.query(FooterKey) if key.display]
    assert keys[-1] == ("palette", False)
    return keys[:-1]


async def test_footer_composed_again_only_for_a_key_it_never_showed(monkeypatch: pytest.MonkeyPatch) -> None:
    app = _FooterApp()
    async with app.run_test() as pilot:
        await pilot.pause()
        footer = app.query_one(KeysFooter)
        composed: list[int] = []
        recompose = footer.recompose

        async def counted() -> None:
            composed.append(1)
            await recompose()

        monkeypatch.setattr(footer, "recompose", counted)
        assert _footer_keys(app) == [("Go", False)]
        app.screen.refresh_bindings()  # same keys, same state: nothing to do
        await pilot.pause()
        app.allowed = False  # the key greys out, in place
        app.screen.refresh_bindings()
        await pilot.pause()
        assert _footer_keys(app) == [("Go", True)]
        app.allowed = True
        app.query_one("#box", Input).focus()  # the box takes "x": the key is greyed out, in place
        await pilot.pause()
        assert _footer_keys(app) == [("Go", True)]
        app.query_one(Grid).focus()
        app.screen.refresh_bindings()
        await pilot.pause()
        assert _footer_keys(app) == [("Go", False)]
        assert composed == []
        app.bind("f3", "more", description="More")  # a key it never showed: composed again
        app.screen.refresh_bindings()
        await pilot.pause()
        assert composed == [1]
        assert _footer_keys(app) == [("Go", False), ("More", False)]


class _FilterApp(App[None]):
    CSS = "FilterBox { width: 24; }"

    def compose(self) -> ComposeResult:
        grid = Grid([Column("name", "Server")])
        yield FilterBox(grid.set_filter, id="box")
        yield grid


async def test_filter_box_typing_lays_nothing_out_and_scrolls_to_the_cursor(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A character typed repaints the box alone, no layout of the screen; text longer than the box
    scrolls inside it, keeping the end and the cursor in view, and going home shows the start."""
    app = _FilterApp()
    async with app.run_test(size=(60, 8)) as pilot:
        box = app.query_one(FilterBox)
        box.focus()
        await pilot.pause()
        layouts = count_layouts(monkeypatch, app.screen)
        typed = "abcdefghijklmnopqrstuvwxyz0123456789XYZ"  # longer than the box's 18 cells
        await pilot.press(*typed)
        await pilot.pause()
        assert layouts == []
        assert box.value == typed and app.query_one(Grid).filter_text == typed
        shown = "".join(s.text for s in box.render_line(0))
        assert "XYZ" in shown and "abc" not in shown and box.scroll_x > 0
        await pilot.press("home")
        await pilot.pause()
        shown = "".join(s.text for s in box.render_line(0))
        assert shown.startswith("abcdefghij") and box.scroll_x == 0
