"""What every table screen shares: the top bar, the `/` filter, sort, marks and the footer.

A screen subclass provides ``columns()`` and fills its Grid; this base wires the habits operators
expect from k9s (regex filter with `!` inversion and a match count, a sort key with the direction
shown, space / `*` marks with the marked count in the title).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from emconsole.screens.grid import Column, Grid
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

if TYPE_CHECKING:
    from emconsole.screens.app import EmConsoleApp


class TopBar(Static):
    """The one-line header: product, environment, totals, refresh state, clock, mode badge."""


class StatusLine(Static):
    """Filter, match count, sort and marks of the current table."""


class KeysFooter(Footer):
    """Textual's footer, composed again only when the keys it shows change.

    Textual composes it again on every change of bindings, which includes every move of the focus
    between the filter box and the table (`/`, enter, escape) although the keys shown stay the same:
    each time ~10 widgets unmounted and mounted again and the whole screen laid out.
    """

    _shown: tuple[object, ...] | None = None

    def bindings_changed(self, screen: Screen[Any]) -> None:
        palette = self.app.COMMAND_PALETTE_BINDING
        shown = tuple((active.binding, active.enabled, active.tooltip)
                      for key, active in screen.active_bindings.items()
                      if active.binding.show or key == palette)
        if shown == self._shown:
            return
        super().bindings_changed(screen)
        if self.app.app_focus and self.is_attached and screen is self.screen:  # composed again (super)
            self._shown = shown


class TableScreen(Screen[None]):
    """A screen around one Grid."""

    AUTO_FOCUS = "Grid"
    BINDING_GROUP_TITLE = "Table"
    TITLE_TEXT = ""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="table.filter"),
        Binding("s", "sort", "Sort", id="table.sort"),
        Binding("escape", "back", "Back", id="table.back"),
    ]
    MARK_BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "mark", "Mark", id="table.mark"),
        Binding("asterisk", "mark_all", "Mark all", show=False, id="table.mark_all"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.ready = False  # set once composed: server_changed may arrive before
        self.grid = Grid(self.columns(), fixed_columns=self.fixed_columns(), markable=self.markable())

    @property
    def console_app(self) -> EmConsoleApp:
        return cast("EmConsoleApp", self.app)

    # to override
    def columns(self) -> list[Column]:
        raise NotImplementedError

    def fixed_columns(self) -> int:
        return 0

    def markable(self) -> bool:
        return False

    def compose(self) -> ComposeResult:
        yield TopBar(id="topbar")
        yield Input(placeholder="regex filter — ! in front inverts, enter keeps, escape clears", id="filter")
        yield StatusLine(id="statusline")
        yield self.grid
        yield KeysFooter()

    def on_mount(self) -> None:
        self.ready = True
        self.query_one("#filter", Input).display = False
        self.status_changed()

    # ----- header / status ------------------------------------------------------------------------
    def status_changed(self) -> None:
        """Redraw the top bar (totals, refresh state, clock, read-only badge)."""
        if not self.ready:
            return
        # One line high (emconsole.tcss): no layout pass needed, only a repaint.
        self.query_one("#topbar", TopBar).update(self.top_bar(), layout=False)
        self.update_status_line()

    def top_bar(self) -> Text:
        app = self.console_app
        session = app.session
        line = Text(" emconsole ", style="bold reverse")
        env = session.environment if session else "starting…"
        line.append(f" {env} ", style="bold")
        line.append_text(self.totals())
        line.append("  ")
        if app.start_error:
            line.append("✖ " + app.start_error, style="bold red")
        elif app.engine is None:
            line.append("⟳ starting", style="cyan")
        elif app.refreshing:
            line.append(f"⟳ {app.refresh_done}/{app.refresh_total}", style="cyan")
        elif app.paused:
            line.append("refresh ⏸ paused", style="yellow")
        elif session is not None and session.refresh_interval > 0 and app.live_refresh:
            line.append(f"refresh {session.refresh_interval:g}s ▶")
        else:
            line.append("refresh manual")
        right = Text()
        right.append(app.clock().strftime("%H:%M:%S") + "  ")
        if app.read_only:
            right.append(" READ-ONLY ", style="bold black on yellow")
        else:
            right.append(" READ-WRITE ", style="bold white on dark_red" if session and session.production
                         else "bold black on green")
        width = self.size.width or 120
        # The mode badge always shows: the left part gives way on narrow terminals.
        line.truncate(max(0, width - right.cell_len - 1), overflow="ellipsis")
        line.append(" " * max(1, width - line.cell_len - right.cell_len))
        line.append_text(right)
        return line

    def totals(self) -> Text:
        """Screen-specific totals for the top bar."""
        return Text("")

    def update_status_line(self) -> None:
        grid = self.grid
        parts = Text(" ")
        parts.append(self.TITLE_TEXT, style="bold")
        if grid.filter_text:
            parts.append(f"  filter: {grid.filter_text}", style="bold")
            parts.append(f" ({grid.match_count} of {len(grid.row_keys)})")
            if grid.filter_error:
                parts.append(" literal: not a regex", style="yellow")
        else:
            parts.append(f"  {len(grid.row_keys)} rows")
        if grid.sort_column is not None:
            col = grid.columns[grid.sort_column]
            parts.append(f"  sort: {col.label} {'▼' if grid.sort_reverse else '▲'}")
        if grid.marks:
            parts.append(f"  {len(grid.marks)} marked", style="bold magenta")
        self.query_one("#statusline", StatusLine).update(parts, layout=False)
        self.title = self.TITLE_TEXT + (f" — {len(grid.marks)} marked" if grid.marks else "")

    def on_grid_view_changed(self, event: Grid.ViewChanged) -> None:
        self.update_status_line()

    # ----- keys ---------------------------------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.value = self.grid.filter_text
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.grid.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            event.input.display = bool(event.value)
            self.grid.focus()

    def action_back(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_focus or self.grid.filter_text:
            box.value = ""
            box.display = False
            self.grid.set_filter("")
            self.grid.focus()
            return
        if len(self.app.screen_stack) > 1 and self.app.screen_stack[0] is not self:
            self.dismiss()

    def action_sort(self) -> None:
        self.grid.cycle_sort()

    def action_mark(self) -> None:
        self.grid.toggle_mark()
        self.grid.action_cursor(1)

    def action_mark_all(self) -> None:
        self.grid.mark_visible()
