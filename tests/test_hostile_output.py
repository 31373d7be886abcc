"""Injection, the server's side: mitigation IDs, block-list entries, descriptions and event messages a
server sends back, built from quotes, ``;``, ``|``, ``$(...)``, backticks, newlines, NULs, ANSI/OSC/CSI
escapes, bidi overrides, Textual markup and very long strings (a real EM catalogue can carry any
description text; a server's lists hold whatever someone wrote there).

The lab serves them through its own extension points — the catalogue OCS publishes (``org.catalogue``),
``applied``/``blocked`` per server, the event log — and the console must: read them unchanged (JSON
round-trips them exactly), never send them back in a script (a server whose lists cannot be written
back safely is skipped, the others still planned), show them literally in the UI (markup as text, no
click action, no control character reaching the terminal) and in headless tables (controls as ``?``),
and never crash.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cliharness import CliLab
from consolekit import console_app, screen_text, wait_refreshed, wait_until
from emconsole.backends.lab.exchange.catalogue import DEFAULT_ENTRIES, Entry
from emconsole.backends.lab.exchange.org import Organisation
from emconsole.screens.controls import in_line
from emconsole.screens.detail import ServerDetailScreen
from emconsole.screens.fleet import FleetScreen
from emconsole.screens.logs import CommandLogScreen, TextViewer
from rich.control import strip_control_codes

from emconsole.audit import AuditLog
from emconsole.cli.jsonout import StatusDoc
from emconsole.cli.render import Table, write_table
from emconsole.commandlog import CommandLog
from emconsole.engine import FleetEngine
from emconsole.labconfig import LAB_PASSWORD_ENV, Lab, lab_backend, lab_config, start_lab
from emconsole.models import ActionKind, ActionRequest
from emconsole.textsafe import CONTROL_CHARACTERS, visible

HOSTILE, HEALTHY, GARBLED = "LAB-EX01", "LAB-EX02", "LAB-EX03"
#: IDs the hostile server lists as applied: one of them has the base ID M2, so a block of M2 would
#: want to write it back.
APPLIED = [
    "M2.1;$(Stop-Computer)",
    "M7\x1b[31m[bold]red[/]",
    "M8\u2019; Remove-Item C:\\ -Recurse; \u2018",
    "[@click=app.quit]M9",
    "M10\nM11\x00x|y`z",
    "M12" + "L" * 5000,
]
BLOCKED = ["M3\u201c; Stop-Computer; \u201d"]
#: Short enough to be seen whole in the detail table's description column (80 cells).
DESCRIPTION = ("[bold]B[/] [@click=app.quit]Q[/] \x1b[31mR\x1b[0m\x1b]0;owned\x07 \u2018\u2019\u201c\u201d "
               "$(x) `y` a|b;c")
LONG_DESCRIPTION = "[i]" + "D" * 20_000
EVENT = "Fetch failed \x1b[2J\x1b[H[@click=app.quit]Q[/] \x9b31m\u202eevil\nsecond line\x00"
PAYLOAD_ESCAPES = ("\x1b[31m", "\x1b]0;", "\x1b[2J", "\x9b31m", "\x00", "\u202e")


def make_hostile(org: Organisation) -> None:
    """The server's lists, the catalogue OCS publishes and the event log, as a hostile party left them."""
    server = org.server(HOSTILE)
    server.record.applied = list(APPLIED)
    server.record.blocked = list(BLOCKED)
    extra = (Entry(APPLIED[0], DESCRIPTION, ()), Entry(APPLIED[1], DESCRIPTION, ()),
             Entry(APPLIED[5], LONG_DESCRIPTION, ()))
    org.catalogue.entries = (*DEFAULT_ENTRIES, *extra)
    server.windows.write_event(1008, org.clock.now(), "Error", EVENT)


def hostile_lab() -> Lab:
    lab = start_lab(servers=3, seed=4, faults=f"garbage:{GARBLED[-1]}", exchange={"warm": False})
    make_hostile(lab.org)
    return lab


@pytest.fixture
def lab() -> Iterator[Lab]:
    started = hostile_lab()
    try:
        yield started
    finally:
        started.stop()


async def test_the_engine_reads_it_unchanged_and_never_sends_it_back(lab: Lab, tmp_path: Path) -> None:
    engine = FleetEngine(lab_config(lab.fleet), lab_backend(lab.fleet), audit=AuditLog(tmp_path / "a.jsonl"),
                         command_log=CommandLog())
    try:
        views = {v.name: v async for v in engine.refresh()}
        state = views[HOSTILE].state
        assert state is not None, views[HOSTILE].failure
        assert list(state.applied) == APPLIED and list(state.blocked) == BLOCKED
        described = {m.id: m.description for m in state.mitigations}
        assert described[APPLIED[0]] == DESCRIPTION and described[APPLIED[5]] == LONG_DESCRIPTION
        assert EVENT in [e.message for e in state.events]
        for kind in (ActionKind.BLOCK, ActionKind.DELETE):
            plan = engine.plan(ActionRequest(kind=kind, servers=(HOSTILE, HEALTHY), mitigation_ids=("M2",)))
            assert [s.server for s in plan.steps] == [HEALTHY], plan.skipped
            [(skipped, why)] = plan.skipped
            assert skipped == HOSTILE and "not allowed" in why and not CONTROL_CHARACTERS.search(why)
            for step in plan.steps:
                assert not any(bad in step.script_text for bad in [*APPLIED, *BLOCKED, "Stop-Computer"])
        outcomes = [o async for o in engine.execute(plan)]
        assert [(o.server, o.status.value) for o in outcomes] == [(HEALTHY, "done")]
    finally:
        await engine.aclose()


@pytest.fixture
def hostile_cli(cli_lab: Callable[..., CliLab]) -> CliLab:
    made = cli_lab(servers=3, seed=4, faults=f"garbage:{GARBLED[-1]}", exchange={"warm": False})
    make_hostile(made.lab.org)
    return made


def test_headless_json_round_trips_and_tables_show_it_literally(hostile_cli: CliLab) -> None:
    code, out, err = hostile_cli.run("status", "--format", "json")
    assert code == 1 and "Traceback" not in err  # the garbled server could not be read
    doc = StatusDoc.model_validate_json(out)
    server = next(s for s in doc.servers if s.name == HOSTILE)
    assert server.applied == APPLIED and server.blocked == BLOCKED
    described = {m.id: m.description for m in server.mitigations}
    assert described[APPLIED[0]] == DESCRIPTION and described[APPLIED[5]] == LONG_DESCRIPTION
    commands = [("status",), ("status", "--mitigations"), ("status", "--mitigations", "--format", "markdown"),
                ("status", "--format", "csv"), ("check",), ("exposure",), ("report",),
                ("block", "M2", "--all", "--yes"), ("audit",)]
    for args in commands:
        code, out, err = hostile_cli.run(*args)
        assert "Traceback" not in err, (args, err)
        for stream in (out, err):
            assert not CONTROL_CHARACTERS.search(stream), (args, CONTROL_CHARACTERS.findall(stream))
        if "--mitigations" in args and "markdown" not in args:
            assert visible("[bold]B[/] [@click=app.quit]Q[/] \x1b[31mR") in out, args


def test_a_rich_table_on_a_terminal_shows_server_text_as_text() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    table = Table(["ID", "DESCRIPTION"])
    for mid in APPLIED:
        table.add(mid, DESCRIPTION)
    stream = Terminal()
    write_table(table, "table", stream)
    shown = stream.getvalue()
    assert "\x1b[1m" in shown  # rich's own styling reached the terminal ...
    for escape in PAYLOAD_ESCAPES:  # ... the server's escape sequences did not
        assert escape not in shown, repr(escape)
    assert "[@click=app.quit]Q[/]" in shown and "[bold]B[/]" in shown


def seen(text: str) -> str:
    """What the console shows for server text: as written, Rich's Text dropping BEL, BS, VT, FF and CR,
    every other control character ``?``, a line break or tab in a table cell a space."""
    return in_line(strip_control_codes(text))


def rendered(app: object) -> str:
    """Every character the compositor hands the terminal driver, segment by segment."""
    strips = app.screen._compositor.render_strips()  # type: ignore[attr-defined]
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


async def test_the_console_shows_server_text_literally_and_fires_nothing(
        lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LAB_PASSWORD_ENV, lab.fleet.spec.password)
    app = console_app(lab_config(lab.fleet, audit_path=tmp_path / "audit.jsonl"))
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_refreshed(pilot, app)
        fleet = app.screen
        assert isinstance(fleet, FleetScreen)
        assert not CONTROL_CHARACTERS.search(rendered(app))
        fleet.grid.move_cursor(HOSTILE)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ServerDetailScreen))
        await pilot.pause()
        text = screen_text(app)
        assert not CONTROL_CHARACTERS.search(rendered(app)), "a control character reached the terminal"
        assert seen(DESCRIPTION) in text, text
        for mid in APPLIED:  # the ID column is 12 cells wide
            assert seen(mid)[:11] + "…" in text, mid
        assert seen(BLOCKED[0]) in text and seen(EVENT) in text
        export = html.unescape(app.export_screenshot()).replace("\xa0", " ")
        assert "[@click=app.quit]Q[/]" in export and not any(e in export for e in PAYLOAD_ESCAPES)
        row, column = next((y, line.index("[@click=app.quit]Q")) for y, line in enumerate(text.splitlines())
                           if "[@click=app.quit]Q" in line)
        await pilot.click(offset=(column + len("[@click=app.quit]"), row))  # on the Q a link would be
        await pilot.pause()
        assert app.is_running and isinstance(app.screen, ServerDetailScreen)

        await pilot.press("escape", "C")  # the raw output of the garbled server, byte noise and all
        assert isinstance(app.screen, CommandLogScreen)
        log = app.screen
        await wait_until(pilot, lambda: any(log.grid.row(k)[1].plain == GARBLED for k in log.grid.row_keys))
        log.grid.move_cursor(next(k for k in log.grid.row_keys if log.grid.row(k)[1].plain == GARBLED))
        await pilot.press("enter")
        assert isinstance(app.screen, TextViewer)
        await pilot.pause()
        assert not CONTROL_CHARACTERS.search(rendered(app)), "raw output reached the terminal raw"
