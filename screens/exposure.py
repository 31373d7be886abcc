"""The Exposure view: every server × every CVE, worst first, and why — with the key that closes a cell.

The rules are ``emconsole.exposure``'s (shared with ``emconsole exposure`` and ``emconsole check``);
this screen only shows them. One row per cell (server × CVE), sorted exposed → at risk → leftovers
→ unknown → protected → fixed; the panel under the table gives every reason of the cell under the
cursor, the fix verdict, what is in place, and the action ``f`` would start. ``f`` on an exposed or
at-risk cell starts the remedy (unblock, enable EM on the server or the organisation, reapply), on a
leftover cell the delete; ``D`` deletes every leftover shown (or marked) as one action. Both go through
the normal plan → confirm → execute → verify path, so read-only mode and the audit apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from emconsole.screens.actions import ACTION_BINDINGS, ServerActions
from emconsole.screens.base import KeysFooter, TableScreen, TopBar, filter_bar
from emconsole.screens.grid import Column, Grid
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Input, Static

from emconsole.exposure import (
    Exposure,
    ExposureState,
    Reason,
    leftover_deletions,
    remedy,
)
from emconsole.models import ActionRequest, ActionScope

if TYPE_CHECKING:
    from emconsole.engine import ServerView

#: The cell words, worst first, with their mark and style (the order is the view's sort order).
WORDS: dict[str, tuple[str, str]] = {
    "exposed": ("✖", "bold red"),
    "at risk": ("⚠", "bold yellow"),
    "leftovers": ("⚠", "yellow"),
    "unknown": ("?", "magenta"),
    "protected": ("●", "green"),
    "fixed": ("✓", "green"),
}
_ORDER = {w: i for i, w in enumerate(WORDS)}
STATE_COLUMN = 3
_KEY_SEP = "\x00"


def word(e: Exposure) -> str:
    """The one word a cell shows: exposed, at risk, leftovers, unknown, protected or fixed."""
    if e.state is ExposureState.EXPOSED:
        return "exposed"
    if e.at_risk:
        return "at risk"
    if e.leftovers:
        return "leftovers"
    return e.state.value


def state_cell(e: Exposure) -> Text:
    """``✖ exposed``, ``⚠ at risk``, … styled by how bad it is."""
    w = word(e)
    mark, style = WORDS[w]
    return Text(f"{mark} {w}", style=style)


def word_order(cell: Text) -> Any:
    """Sort cells that end in a word of ``WORDS`` worst first; anything else after them."""
    text = cell.plain
    return next((i for w, i in _ORDER.items() if text.endswith(w)), len(_ORDER))


def fleet_cell(exposures: Sequence[Exposure], read: bool) -> Text:
    """The fleet table's Exposure column for one server: its worst word, with the IDs it is about
    (``M2 exposed``, ``M1 M2 at risk``); ``protected`` / ``fixed`` alone when nothing is wrong."""
    if not read or not exposures:
        return Text("?", style="dim")
    worst = min((word(e) for e in exposures), key=_ORDER.__getitem__)
    style = WORDS[worst][1]
    if worst in ("protected", "fixed"):
        return Text(worst, style=style)
    ids = dict.fromkeys(i for e in exposures if word(e) == worst for i in e.mitigation_ids)
    return Text(f"{' '.join(ids)} {worst}", style=style)


def _hidden(bindings: Iterable[BindingType]) -> list[BindingType]:
    """The same bindings (same ids, so a key map still applies), out of the footer."""
    return [replace(b, show=False) if isinstance(b, Binding) else b for b in bindings]


class ExposureScreen(TableScreen, ServerActions):
    """CVE × server cells, worst first; the reason of the cell under the cursor below the table."""

    TITLE_TEXT = "Exposure"
    BINDING_GROUP_TITLE = "Exposure"
    BINDINGS: ClassVar[list[BindingType]] = [
        *TableScreen.MARK_BINDINGS,
        Binding("f", "fix", "Fix", id="exposure.fix"),
        Binding("D", "delete_leftovers", "Delete leftovers", id="exposure.delete_leftovers"),
        *_hidden(ACTION_BINDINGS),
    ]
    PALETTE_ACTIONS: ClassVar[list[tuple[str, str, str]]] = [
        ("fix", "Fix the exposure under the cursor", "unblock, enable EM, reapply or delete the leftover"),
        ("delete_leftovers", "Delete leftovers", "every leftover shown (or marked), with backups"),
    ]

    def __init__(self, cve: str | None = None) -> None:
        super().__init__()
        self.cells: dict[str, Exposure] = {}
        self._initial_cve = cve

    def columns(self) -> list[Column]:
        return [
            Column("server", "Server", max_width=24),
            Column("cve", "CVE", max_width=16),
            Column("ids", "ID", max_width=10),
            Column("state", "State", max_width=11, sort_key=word_order),
            Column("build", "Build", max_width=24),
            Column("why", "Why", max_width=100),
        ]

    def markable(self) -> bool:
        return True

    def compose(self) -> ComposeResult:
        yield TopBar(id="topbar")
        yield filter_bar(self.grid)
        yield self.grid
        with VerticalScroll(id="reason"):
            yield Static(id="reason-text")
        yield KeysFooter()

    def on_mount(self) -> None:
        super().on_mount()
        self.grid.sort_by(STATE_COLUMN)  # worst first; ties keep config order, then catalogue order
        for view in self.console_app.views():
            self.server_changed(view)
        if self._initial_cve:
            self.show_cve(self._initial_cve)
        self.show_reason()

    def show_cve(self, cve: str) -> None:
        """Only this CVE's cells (the filter, which escape clears)."""
        box = self.query_one("#filter", Input)
        box.value = cve  # the grid's filter follows
        box.display = True
        self.grid.focus()

    # ----- rows ---------------------------------------------------------------------------------
    def server_changed(self, view: ServerView) -> None:
        """One server's new snapshot: its cells are assessed again (changed cells light up)."""
        if not self.ready:
            return
        for e in self.console_app.exposures(view):
            key = f"{e.server}{_KEY_SEP}{e.cve}"
            known = key in self.cells
            self.cells[key] = e
            self.grid.set_row(key, [
                Text(e.server), Text(e.cve), Text(" ".join(e.mitigation_ids)), state_cell(e),
                Text(e.build_name.removeprefix("Exchange ") if e.build_name else e.build or "?"),
                Text(" ".join(e.why.split())),
            ], highlight=known)
        cursor = self.current()
        if cursor is not None and cursor.server == view.name:
            self.show_reason()

    def totals(self) -> Text:
        counts = dict.fromkeys(WORDS, 0)
        for e in self.cells.values():
            counts[word(e)] += 1
        out = Text(f" {len(self.cells)} cells")
        for w in ("exposed", "at risk", "leftovers", "unknown"):
            out.append(" · ")
            out.append(f"{w} {counts[w]}", style=WORDS[w][1] if counts[w] else "")
        return out

    # ----- the cell under the cursor ----------------------------------------------------------------
    def current(self) -> Exposure | None:
        key = self.grid.cursor_key
        return self.cells.get(key) if key is not None else None

    def on_grid_cursor_moved(self, event: Grid.CursorMoved) -> None:
        self.show_reason()

    def show_reason(self) -> None:
        """The panel: every reason of the cursor cell, the fix, what is in place, what ``f`` would do."""
        if not self.ready:
            return
        self.query_one("#reason-text", Static).update(self.reason_text(self.current()))
        self.refresh_bindings()

    def reason_text(self, e: Exposure | None) -> Text:
        text = Text()
        if e is None:
            return Text("no cells yet", style="dim")
        w = word(e)
        text.append(f"{e.server} · {e.cve} ({', '.join(e.mitigation_ids)}) · ", style="bold")
        text.append(e.label, style=WORDS[w][1])
        if e.build_name or e.build:
            text.append(f" · {e.build_name or '?'} ({e.build or '?'})", style="dim")
        for reason in e.reasons:
            text.append(f"\n  • {reason.text}")
        for lo in e.leftovers:
            text.append(f"\n  • left over: {', '.join(lo.artifacts)}")
        request = self.fix_request(e)  # before the details: it must show on a small terminal too
        if request is not None:
            from emconsole.screens.app import request_title

            text.append(f"\nf: {request_title(request)}", style="bold")
        else:
            text.append(f"\n{_no_fix(e)}", style="italic")
        if e.fix:
            text.append(f"\nfix: {e.fix}", style="dim")
        if e.note:
            text.append(f"\nnote: {' '.join(e.note.split())}", style="dim")
        if e.artifacts_present and not e.leftovers:
            text.append(f"\nin place: {', '.join(e.artifacts_present)}", style="dim")
        return text

    def fix_request(self, e: Exposure | None) -> ActionRequest | None:
        """The action that closes the cell: the remedy, or for leftovers their delete (with backup)."""
        if e is None:
            return None
        if e.leftovers:
            requests = leftover_deletions([e])
            return requests[0] if requests else None
        request = remedy(e)
        if request is not None and request.scope is ActionScope.ORG:
            # The organisation switch reaches every server: say so, and count them for the confirm.
            every = tuple(v.name for v in self.console_app.views())
            request = ActionRequest(kind=request.kind, servers=every, scope=ActionScope.ORG)
        return request

    def leftover_requests(self) -> list[ActionRequest]:
        """Deletes for the leftovers of the marked cells, or of every cell the filter shows."""
        grid = self.grid
        keys = [k for k in grid.row_keys if k in grid.marks] if grid.marks else grid.visible_keys
        return leftover_deletions(self.cells[k] for k in keys if k in self.cells)

    # ----- keys ---------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        allowed = super().check_action(action, parameters)
        if allowed is not True:
            return allowed
        if action == "fix":
            return True if self.fix_request(self.current()) is not None else None
        if action == "delete_leftovers":
            return True if self.leftover_requests() else None
        return True

    def action_fix(self) -> None:
        request = self.fix_request(self.current())
        if request is not None:
            self.console_app.start_requests([request])

    def action_delete_leftovers(self) -> None:
        self.console_app.start_requests(self.leftover_requests())

    def target_servers(self) -> list[str]:
        return list(dict.fromkeys(e.server for e in self._targets()))

    def target_mitigations(self) -> list[str] | None:
        ids = list(dict.fromkeys(i for e in self._targets() for i in e.mitigation_ids))
        return ids or None

    def _targets(self) -> list[Exposure]:
        grid = self.grid
        keys = [k for k in grid.row_keys if k in grid.marks] if grid.marks else [grid.cursor_key or ""]
        return [self.cells[k] for k in keys if k in self.cells]

    def on_grid_view_changed(self, event: Grid.ViewChanged) -> None:
        super().on_grid_view_changed(event)
        self.refresh_bindings()  # marks and the filter decide what D would delete

    def on_grid_selected(self, event: Grid.Selected) -> None:
        self.console_app.open_server(event.key.split(_KEY_SEP, 1)[0])


def _no_fix(e: Exposure) -> str:
    """Why ``f`` has nothing to start for this cell."""
    codes = e.reason_codes
    if e.state is ExposureState.FIXED:
        return "fixed: nothing to close"
    if e.state is ExposureState.PROTECTED and not codes:
        return "protected, and EM would put the mitigation back: nothing to close"
    if Reason.NOT_READ in codes:
        return "no action closes it from here: the server could not be read (r reads it again)"
    if e.state is ExposureState.UNKNOWN:
        return ("no action closes it from here: whether the build has the fix is not known "
                "(a build in [[extra_builds]] makes it known)")
    if codes and codes[0] is Reason.OCS_UNREACHABLE:
        return ("no action closes it from here: the EM service cannot reach OCS — a network or proxy "
                "matter (o tests it from the server)")
    return "no action closes it from here"
