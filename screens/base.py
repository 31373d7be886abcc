"""What every table screen shares: the top bar, the `/` filter, sort, marks and the footer.

A screen subclass provides ``columns()`` and fills its Grid; this base wires the habits operators
expect from k9s (regex filter with `!` inversion and a match count, a sort key with the direction
shown, space / `*` marks with the marked count in the title).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, cast

from emconsole.screens.grid import Column, Grid
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.geometry import Size
from textual.reactive import Reactive
from textual.screen import Screen
from textual.widgets import Footer, Input, Static
from textual.widgets._footer import FooterKey

if TYPE_CHECKING:
    from emconsole.screens.app import EmConsoleApp

#: One key as the footer shows it: its binding, whether it may be used now, its tooltip.
_Shown = tuple[Binding, bool, str]


class TopBar(Static):
    """The one-line header: product, environment, totals, refresh state, clock, mode badge."""


FILTER_HINT = "regex filter — ! in front inverts, enter keeps, escape clears"


class FilterBox(Input):
    """The `/` filter box. Textual's Input lays the whole screen out again on every character typed
    (its virtual size follows the text, and that size is a layout property); in this fixed-size box
    the text only scrolls, so a keystroke repaints the box alone (bench/ui_load.py, 500 servers)."""

    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)

    def __init__(self, applies: Callable[[str], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._applies = applies

    def watch_value(self, value: str) -> None:
        """The table's filter follows the text at once, in the turn the character was typed: the
        rows that pass reach the frame that shows the character. (Through the ``Changed`` message
        they came a few turns later, often in a frame of their own: two frames per character.)"""
        if self.is_mounted:
            self._applies(value)


class StatusLine(Static):
    """Filter, match count, sort and marks of the current table.

    Its virtual size is not a layout property here (as in FilterBox): when the filter box opens
    beside it, the layout that narrows it set its virtual size, and Textual laid the whole screen
    out a second time for that (8-13 ms with 500 servers) although a one-line status of fixed
    height places nothing by its content."""

    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)


def filter_bar(grid: Grid, placeholder: str = FILTER_HINT) -> Horizontal:
    """The `/` filter box (filtering ``grid``) and the status line, on one line: the box appears and
    goes beside the status without the table changing size. (A 3-line box above it resized the
    table each time: Textual then laid the screen out twice, 13 + 8 ms after `/` and 23-27 + 9-13 ms
    after escape with 500 servers, the second one paid by the next key.)"""
    return Horizontal(FilterBox(grid.set_filter, placeholder=placeholder, id="filter"),
                      StatusLine(id="statusline"), id="filterbar")


class KeysFooter(Footer):
    """Textual's footer, composed again only when a key appears that it has never shown.

    Textual composes it again on every change of bindings, which includes every move of the focus
    between the filter box and the table (`/`, enter, escape): ~12 widgets unmounted and mounted
    again, ~50 ms of CPU each time with the fleet screen showing 500 servers (bench/ui_load.py: the
    first cursor key after a filter cost 55 ms instead of 5). Here a change that only greys keys out
    or brings them back is made on the widgets already there. A key the focused widget took (the
    filter box takes the letters) is greyed out, not hidden: each hidden key asked for a layout of
    the screen (the first cursor key after a filter, during a refresh of 500 servers: event-loop
    CPU p50 29 ms with them hidden, 22 greyed); and the footer keeps its place while the operator
    types.
    """

    _shown: tuple[_Shown, ...] | None = None

    def bindings_changed(self, screen: Screen[Any]) -> None:
        shown = self._keys_for(screen)
        if shown == self._shown:
            return
        ready = self.app.app_focus and self.is_attached and screen is self.screen
        if not ready or not self._show_in_place(shown):
            super().bindings_changed(screen)  # composed again, after the next frame
        if ready:
            self._shown = shown

    def _keys_for(self, screen: Screen[Any]) -> tuple[_Shown, ...]:
        """The keys ``Footer.compose`` would show, in its order: one per action, then the palette's."""
        active = screen.active_bindings
        first: dict[str, _Shown] = {}
        for entry in active.values():
            if entry.binding.show:
                first.setdefault(entry.binding.action, (entry.binding, entry.enabled, entry.tooltip))
        keys = list(first.values())
        palette = active.get(self.app.COMMAND_PALETTE_BINDING)
        if palette is not None and self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            keys.append((palette.binding, palette.enabled, palette.tooltip))
        return tuple(keys)

    def _show_in_place(self, shown: tuple[_Shown, ...]) -> bool:
        """Show ``shown`` with the key widgets already there, the others greyed out; False when one
        is missing or out of order."""
        widgets = [child for child in self.children if isinstance(child, FooterKey)]
        if len(widgets) != len(self.children) or any(binding.group is not None for binding, _e, _t in shown):
            return False
        matched: list[_Shown | None] = []
        pending = iter(shown)
        entry = next(pending, None)
        for widget in widgets:
            if entry is not None and (entry[0].key, entry[0].action, entry[0].description) == (
                    widget.key, widget.action, widget.description):
                matched.append(entry)
                entry = next(pending, None)
            else:
                matched.append(None)
        if entry is not None:
            return False
        for widget, wanted in zip(widgets, matched, strict=True):
            binding, enabled, tooltip = wanted if wanted is not None else (None, False, "")
            widget._disabled = not enabled  # what FooterKey's click looks at
            widget.set_class(not enabled, "-disabled")
            if binding is not None and widget.has_class("-command-palette"):
                tooltip = tooltip or binding.tooltip or binding.description
            widget.tooltip = tooltip or None
        return True


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
        yield filter_bar(self.grid)
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
        try:
            bar = self.query_one("#topbar", TopBar)
        except NoMatches:  # the app is closing and has taken the screen's widgets down already
            return
        # One line high (emconsole.tcss): no layout pass needed, only a repaint.
        bar.update(self.top_bar(), layout=False)
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

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            event.input.display = bool(event.value)
            self.grid.focus()

    def action_back(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_focus or self.grid.filter_text:
            box.value = ""  # the grid's filter follows
            box.display = False
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
