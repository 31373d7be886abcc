"""Mitigations × servers, and the flat list of every mitigation on every server.

The matrix is for spotting the odd server out: one row per mitigation (base ID), one narrow column
per server. The list has one row per (server, mitigation) — ~5,000 rows for 500 servers — and,
being a Grid, filters by recomputing visible keys only.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, ClassVar

from emconsole.screens.actions import ACTION_BINDINGS, ServerActions
from emconsole.screens.base import TableScreen
from emconsole.screens.detail import artifact_text
from emconsole.screens.format import DASH
from emconsole.screens.grid import Column, Grid
from rich.text import Text
from textual.binding import BindingType

from emconsole.models import MitigationStatus, ServerState, base_id, is_blocked

if TYPE_CHECKING:
    from emconsole.engine import ServerView

CELL_APPLIED = Text("A", style="bold green")
CELL_BLOCKED = Text("B", style="bold yellow")
CELL_BOTH = Text("AB", style="bold yellow")
CELL_FAILED = Text("F", style="bold red")
CELL_NA = Text("·", style="dim")
CELL_UNKNOWN = Text("?", style="dim")
LEGEND = "A applied  B blocked  F failed  · not applied or not applicable  ? not read"


def short_labels(names: list[str]) -> tuple[str, list[str]]:
    """Drop the prefix every server name shares ("LAB-EX01".."LAB-EX36" -> "01".."36") so more
    servers fit across; returns (prefix, labels). Names are kept whole when nothing is shared."""
    prefix = os.path.commonprefix(names) if len(names) > 1 else ""  # noqa: RUF071 (characters wanted)
    prefix = prefix.rstrip("0123456789")  # keep the numbers whole: EX09/EX10 -> 09/10, not 9/10
    if len(prefix) < 3 or any(len(n) == len(prefix) for n in names):
        return "", list(names)
    return prefix, [n[len(prefix):] for n in names]


def matrix_cell(state: ServerState | None, mitigation: str) -> Text:
    """One server's state for one mitigation (base ID)."""
    if state is None:
        return CELL_UNKNOWN
    applied = any(base_id(a).casefold() == mitigation.casefold() for a in state.applied)
    failed = any(base_id(m.id).casefold() == mitigation.casefold() and m.status is MitigationStatus.FAILED
                 for m in state.mitigations)
    blocked = is_blocked(mitigation, state.blocked)
    if failed:
        return CELL_FAILED
    if applied and blocked:
        return CELL_BOTH
    if applied:
        return CELL_APPLIED
    if blocked:
        return CELL_BLOCKED
    return CELL_NA


class MatrixScreen(TableScreen, ServerActions):
    """Rows: mitigations; columns: servers. Actions apply the cursor (or marked) mitigations to the
    fleet's marked servers, or to every server."""

    TITLE_TEXT = "Matrix"
    BINDING_GROUP_TITLE = "Matrix"
    BINDINGS: ClassVar[list[BindingType]] = [*TableScreen.MARK_BINDINGS, *ACTION_BINDINGS]

    def __init__(self, focus_mitigation: str | None = None) -> None:
        super().__init__()
        self.focus_mitigation = focus_mitigation
        self._servers: list[str] = []
        self._prefix = ""

    def columns(self) -> list[Column]:
        return [Column("id", "Mitigation", max_width=12)]

    def fixed_columns(self) -> int:
        return 1

    def markable(self) -> bool:
        return True

    def on_mount(self) -> None:
        super().on_mount()
        self.rebuild()
        if self.focus_mitigation:
            self.grid.move_cursor(base_id(self.focus_mitigation))

    def _mitigation_ids(self, views: list[ServerView]) -> list[str]:
        ids: dict[str, None] = {e.id: None for e in self.console_app.knowledge.catalogue.entries}
        for view in views:
            if view.state is not None:
                st = view.state
                for mid in (*st.applied, *st.blocked, *(m.id for m in st.mitigations)):
                    ids.setdefault(base_id(mid), None)
        return list(ids)

    def rebuild(self) -> None:
        """Columns follow the servers; rows follow the mitigations seen anywhere."""
        views = self.console_app.views()
        names = [v.name for v in views]
        if names != self._servers:
            self._servers = names
            self._prefix, labels = short_labels(names)
            cols = [Column("id", "Mitigation", max_width=12)]
            cols += [Column(n, label, max_width=max(2, min(len(label), 10)), min_width=2)
                     for n, label in zip(names, labels, strict=True)]
            self.grid.set_columns(cols)
        states = {v.name: v.state for v in views}
        for mid in self._mitigation_ids(views):
            cells = [Text(mid)] + [matrix_cell(states[n], mid) for n in names]
            self.grid.set_row(mid, cells, highlight=False)

    def server_changed(self, view: ServerView) -> None:
        if not self.ready:
            return
        if view.name not in self._servers:
            self.rebuild()
            return
        col = self._servers.index(view.name) + 1
        for mid in self._mitigation_ids([view]):
            if self.grid.row(mid) is None:
                self.rebuild()
                return
        for mid in self.grid.row_keys:
            self.grid.set_cell(mid, col, matrix_cell(view.state, mid))

    def totals(self) -> Text:
        prefix = f" ({self._prefix}…)" if self._prefix else ""
        return Text(f" {len(self._servers)} servers{prefix} · {LEGEND}")

    def target_servers(self) -> list[str]:
        from emconsole.screens.fleet import FleetScreen

        for screen in self.app.screen_stack:
            if isinstance(screen, FleetScreen) and screen.grid.marks:
                return [k for k in screen.grid.row_keys if k in screen.grid.marks]
        return list(self._servers)

    def target_mitigations(self) -> list[str] | None:
        grid = self.grid
        if grid.marks:
            return [k for k in grid.row_keys if k in grid.marks]
        return [grid.cursor_key] if grid.cursor_key else None


class MitigationListScreen(TableScreen):
    """Every mitigation on every server, one row each; enter opens the server."""

    TITLE_TEXT = "Mitigations"
    BINDING_GROUP_TITLE = "Mitigations"

    def columns(self) -> list[Column]:
        return [
            Column("server", "Server", max_width=20),
            Column("id", "ID", max_width=12),
            Column("type", "Type", max_width=12),
            Column("status", "Status", max_width=14),
            Column("found", "Found on server", max_width=60),
            Column("desc", "Description", max_width=80),
        ]

    def __init__(self) -> None:
        super().__init__()
        self._keys: dict[str, set[str]] = {}

    def on_mount(self) -> None:
        super().on_mount()
        for view in self.console_app.views():
            self.server_changed(view)

    def server_changed(self, view: ServerView) -> None:
        if not self.ready or view.state is None:
            return
        prefix = view.name + "\x00"
        current = self._keys.get(view.name, set())
        seen: set[str] = set()
        for mit in view.state.mitigations:
            key = prefix + mit.id
            seen.add(key)
            found = "; ".join(artifact_text(a) for a in mit.artifacts) or DASH
            self.grid.set_row(key, [
                Text(view.name), Text(mit.id), Text(mit.kind.value.replace("_", " ")),
                Text(mit.raw_status or mit.status.value.replace("_", " ")), Text(found),
                Text(" ".join(mit.description.split())),
            ])
        for key in current - seen:
            self.grid.remove_row(key)
        self._keys[view.name] = seen

    def on_grid_selected(self, event: Grid.Selected) -> None:
        self.console_app.open_server(event.key.split("\x00", 1)[0])
