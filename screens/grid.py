"""A virtualised table (Textual Line API) for every list in the console.

Why not DataTable: refilling costs ~0.2 ms per row, so filtering 5,000 mitigation rows or re-sorting
a 500-server fleet would block the event loop. Here the rows live in a dict keyed by row key; a
filter or sort only recomputes the list of visible keys, and only the lines on screen are rendered.
Cells are ``rich.text.Text`` so that server-supplied strings are never parsed as markup, and one line
each (``controls.one_line``: a line break in a rule name must not break the row).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from emconsole.screens.controls import one_line
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

if TYPE_CHECKING:
    from textual.timer import Timer

HIGHLIGHT_SECONDS = 2.0
MARK_WIDTH = 2  # "▶" / "●" gutter before the first column


@dataclass
class Column:
    """A column: its label, the width it may grow to, and how its cells sort."""

    key: str
    label: str
    max_width: int = 40
    min_width: int = 1
    sort_key: Callable[[Text], Any] | None = None
    width: int = 0  # grows to fit content, up to max_width


def natural_key(cell: Text) -> Any:
    """Sort "EX2" before "EX10" and numbers numerically."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in re.split(r"(\d+)", cell.plain)]


def compile_filter(expr: str) -> tuple[re.Pattern[str] | None, bool, str | None]:
    """Parse a filter: regex, a leading ``!`` inverts. Returns (pattern, inverted, error)."""
    inverted = expr.startswith("!")
    body = expr[1:] if inverted else expr
    if not body:
        return None, False, None
    try:
        return re.compile(body, re.IGNORECASE), inverted, None
    except re.error as exc:
        # An unfinished regex while typing: fall back to a literal match, report why.
        return re.compile(re.escape(body), re.IGNORECASE), inverted, str(exc)


class Grid(ScrollView, can_focus=True):
    """Rows by key, a fixed header, regex filter, sort, marks and changed-cell highlights."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False, id="grid.up"),
        Binding("down,j", "cursor(1)", "Down", show=False, id="grid.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="grid.page_up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="grid.page_down"),
        Binding("home,g", "jump(0)", "First", show=False, id="grid.first"),
        Binding("end,G", "jump(-1)", "Last", show=False, id="grid.last"),
        Binding("left,h", "scroll_left", "Left", show=False, id="grid.left"),
        Binding("right,l", "scroll_right", "Right", show=False, id="grid.right"),
        Binding("enter", "select", "Open", show=False, id="grid.select"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "grid--header",
        "grid--cursor",
        "grid--marked",
        "grid--changed",
        "grid--sorted",
    }

    DEFAULT_CSS = """
    Grid { height: 1fr; background: $surface; }
    Grid > .grid--header { text-style: bold; color: $text-accent; background: $panel; }
    Grid > .grid--sorted { text-style: bold underline; }
    Grid > .grid--cursor { background: $block-cursor-background; color: $block-cursor-foreground; }
    Grid:blur > .grid--cursor { background: $block-cursor-blurred-background; }
    Grid > .grid--marked { background: $secondary 30%; text-style: bold; }
    Grid > .grid--changed { background: $warning 40%; }
    """

    class Selected(Message):
        """Enter (or a second click) on a row."""

        def __init__(self, grid: Grid, key: str) -> None:
            super().__init__()
            self.grid = grid
            self.key = key

    class CursorMoved(Message):
        """The cursor is on another row (or the table became empty: key None)."""

        def __init__(self, grid: Grid, key: str | None) -> None:
            super().__init__()
            self.grid = grid
            self.key = key

    class ViewChanged(Message):
        """Filter, sort, rows or marks changed: the owner updates counts and titles."""

        def __init__(self, grid: Grid) -> None:
            super().__init__()
            self.grid = grid

    def __init__(
        self,
        columns: Sequence[Column],
        *,
        fixed_columns: int = 0,
        markable: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns: list[Column] = list(columns)
        for col in self.columns:
            col.width = max(col.min_width, min(len(col.label), col.max_width))
        self.fixed_columns = fixed_columns
        self.markable = markable
        self._rows: dict[str, list[Text]] = {}
        #: Each row's cells joined, what a filter searches; rows in _unsearched are joined again first.
        self._search: dict[str, str] = {}
        self._unsearched: set[str] = set()
        self._row_style: dict[str, Style] = {}
        self._visible: list[str] = []
        self._index: dict[str, int] = {}
        self.marks: set[str] = set()
        self.cursor_key: str | None = None
        self.sort_column: int | None = None
        self.sort_reverse = False
        self.filter_text = ""
        self.filter_error: str | None = None
        self._pattern: re.Pattern[str] | None = None
        self._inverted = False
        self._changed: dict[tuple[str, int], float] = {}
        # Drawn lines by row key (None: the header), with what they were drawn for (see _line);
        # dropped when a row changes.
        self._lines: dict[str | None, tuple[tuple[object, ...], Strip]] = {}
        self._blank: tuple[tuple[int, Style], Strip] | None = None  # and for the lines below the rows
        # A cell's segments by what they depend on: most cells of a changed row did not change, and
        # values repeat down a column ("on", "ok", builds), so a new line is mostly lookups.
        self._cells: dict[tuple[object, ...], list[Segment]] = {}
        self._frame_style: Style | None = None  # the widget's style, looked up once per frame
        self._dirty = False
        self._repaint = False  # the next _apply draws every line (else only what the caller drew)
        self._scheduled = False
        self._expiry: Timer | None = None  # the one timer that ends the earliest highlight
        self.highlight_changes = True

    # ----- data ---------------------------------------------------------------------------------
    def set_columns(self, columns: Sequence[Column]) -> None:
        """Replace the columns (the matrix grows a column per server); rows must follow."""
        self.columns = list(columns)
        for col in self.columns:
            col.width = max(col.min_width, min(len(col.label), col.max_width))
        for cells in self._rows.values():
            self._grow(cells)
        self._invalidate()

    def set_row(self, key: str, cells: Sequence[Text | str], *, style: Style | None = None,
                highlight: bool = True) -> None:
        """Add or update a row. Only a changed row is re-rendered; changed cells are highlighted."""
        new = [one_line(c if isinstance(c, Text) else Text(c)) for c in cells]
        old = self._rows.get(key)
        if style is None:
            self._row_style.pop(key, None)
        else:
            self._row_style[key] = style
        if old is not None:
            if highlight and self.highlight_changes:
                now = time.monotonic()
                for i, (a, b) in enumerate(zip(old, new, strict=False)):
                    if a.plain != b.plain:
                        self._changed[(key, i)] = now + HIGHLIGHT_SECONDS
                if self._changed and self._expiry is None:
                    self._expiry = self.set_timer(HIGHLIGHT_SECONDS + 0.05, self._expire_highlights)
            self._rows[key] = new
            self._lines.pop(key, None)
            self._unsearched.add(key)
            if self._grow(new):
                self._invalidate()
                return
            self._refresh_row(key)
            if self.sort_column is not None or self._pattern is not None:
                self._invalidate(repaint=False)  # it may move, appear or go: _recompute will see
            return
        self._rows[key] = new
        self._search[key] = ""
        self._unsearched.add(key)
        self._grow(new)
        self._invalidate()

    def set_cell(self, key: str, column: int, value: Text) -> None:
        """Rewrite one cell without highlighting."""
        self.set_cells(column, [(key, value)])

    def set_cells(self, column: int, values: Iterable[tuple[str, Text]]) -> None:
        """Rewrite one column's cell in many rows without highlighting (the ages ticking: 500 rows
        every second, so the column's width and the lines on screen are looked at once)."""
        col = self.columns[column] if column < len(self.columns) else None
        shown = self._on_screen()
        grew = False
        for key, text in values:
            cells = self._rows.get(key)
            value = one_line(text)
            if cells is None or col is None or column >= len(cells) or cells[column].plain == value.plain:
                continue
            cells[column] = value
            self._lines.pop(key, None)
            self._unsearched.add(key)
            width = min(col.max_width, value.cell_len)
            if width > col.width:
                col.width = width
                grew = True
            self._refresh_row(key, shown)
        if grew:
            self._invalidate()
        elif self.sort_column == column or self._pattern is not None:
            self._invalidate(repaint=False)

    def _on_screen(self) -> range:
        """The indexes of the visible rows whose lines are on screen now."""
        top = round(self.scroll_y)
        return range(top, top + self.size.height - 1)

    def _refresh_row(self, key: str, shown: range | None = None) -> None:
        """Repaint a row's line if it is on screen. A row off screen is drawn when scrolled to; asking
        for its line anyway cost a frame of its own (500 rows update in a refresh, ~45 show)."""
        idx = self._index.get(key)
        if idx is not None and idx in (self._on_screen() if shown is None else shown):
            self.refresh_line(idx + 1)

    def remove_row(self, key: str) -> None:
        """Drop a row (a server left the config, a log was trimmed)."""
        if self._rows.pop(key, None) is not None:
            self._lines.pop(key, None)
            self._search.pop(key, None)
            self._unsearched.discard(key)
            self._row_style.pop(key, None)
            self.marks.discard(key)
            self._invalidate()

    def clear(self) -> None:
        """Remove every row (marks go too)."""
        self._rows.clear()
        self._lines.clear()
        self._search.clear()
        self._unsearched.clear()
        self._row_style.clear()
        self.marks.clear()
        self._changed.clear()
        for col in self.columns:
            col.width = max(col.min_width, min(len(col.label), col.max_width))
        self._invalidate()

    def row(self, key: str) -> list[Text] | None:
        """The cells of a row, or None."""
        return self._rows.get(key)

    @property
    def row_keys(self) -> list[str]:
        """Every row key, in insertion order."""
        return list(self._rows)

    @property
    def visible_keys(self) -> list[str]:
        """The keys that pass the filter, in display order."""
        self._recompute()
        return list(self._visible)

    def _grow(self, cells: Sequence[Text]) -> bool:
        """Widen columns to fit ``cells``; True when one grew (every line must be drawn again)."""
        grew = False
        for col, cell in zip(self.columns, cells, strict=False):
            width = min(col.max_width, cell.cell_len)
            if width > col.width:
                col.width = width
                grew = True
        return grew

    # ----- view state ---------------------------------------------------------------------------
    def set_filter(self, expr: str) -> None:
        """Regex filter over the whole row; ``!`` in front keeps the rows that do NOT match. Applied
        at once (one per key typed, not a batch to gather): the rows reach the key's own frame."""
        self.filter_text = expr
        self._pattern, self._inverted, self.filter_error = compile_filter(expr)
        self._dirty = True  # drawn again only if other rows pass
        self._apply()

    def sort_by(self, column: int | None, reverse: bool = False) -> None:
        """Sort by a column (None: insertion order)."""
        self.sort_column = column
        self.sort_reverse = reverse
        self._invalidate()

    def cycle_sort(self) -> None:
        """Next column ascending, then descending, then the next column; back to config order."""
        if self.sort_column is None:
            self.sort_by(0)
        elif not self.sort_reverse:
            self.sort_by(self.sort_column, True)
        elif self.sort_column + 1 < len(self.columns):
            self.sort_by(self.sort_column + 1)
        else:
            self.sort_by(None)

    def toggle_mark(self, key: str | None = None) -> None:
        """Mark or unmark a row (the cursor row by default)."""
        key = key or self.cursor_key
        if key is None or not self.markable:
            return
        if key in self.marks:
            self.marks.discard(key)
        else:
            self.marks.add(key)
        self._after_marks()

    def mark_visible(self) -> None:
        """Mark every visible row; if all are marked already, unmark them."""
        visible = set(self.visible_keys)
        if visible and visible <= self.marks:
            self.marks -= visible
        else:
            self.marks |= visible
        self._after_marks()

    def _after_marks(self) -> None:
        self.refresh()
        self.post_message(self.ViewChanged(self))

    def _invalidate(self, repaint: bool = True) -> None:
        """Defer the (cheap but not free) recompute and the repaint to once per batch of updates.
        ``repaint=False``: the caller drew what it changed, and the rest is drawn again only if the
        recompute changes which rows show (a filter key that keeps the same rows repainted all ~45
        lines and the scrollbar: ~10 ms with 500 servers)."""
        self._dirty = True
        self._repaint = self._repaint or repaint
        if not self._scheduled:
            self._scheduled = True
            self.call_later(self._apply)

    def _apply(self) -> None:
        # A reader (visible_keys, render_line) may have recomputed in between: _recompute keeps the flag.
        self._scheduled = False
        self._recompute()
        if self._repaint:
            self._repaint = False
            self.refresh()
        self.post_message(self.ViewChanged(self))

    def _recompute(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        keys: Iterable[str] = self._rows
        if self._pattern is not None:
            for key in self._unsearched:
                self._search[key] = "\t".join(c.plain for c in self._rows[key])
            self._unsearched.clear()
            search, inverted = self._pattern.search, self._inverted
            keys = [k for k, s in self._search.items() if (search(s) is None) == inverted]
        keys = list(keys)
        if self.sort_column is not None and self.sort_column < len(self.columns):
            col = self.sort_column
            sk = self.columns[col].sort_key or natural_key
            rows = self._rows
            keys.sort(key=lambda k: sk(rows[k][col]) if col < len(rows[k]) else "", reverse=self.sort_reverse)
        if keys != self._visible:
            self._repaint = True
        self._visible = keys
        self._index = {k: i for i, k in enumerate(keys)}
        if self.cursor_key not in self._index:
            self.cursor_key = keys[0] if keys else None
            self.post_message(self.CursorMoved(self, self.cursor_key))
        self._resize(Size(self._total_width(), len(keys) + 1))
        self._scroll_cursor_into_view(centre=True)

    def _resize(self, virtual_size: Size) -> None:
        """Set the rows' size. ScrollView lays the whole screen out again on every change of it
        (~23 ms with 500 servers: each filter key that changed the match count paid it); a laid-out
        grid whose height does not follow its rows only needs its scrollbars set again, and they ask
        for a layout themselves when one appears or goes. A grid of ``height: auto`` (the results
        screen) still lays out: its own height changes."""
        if virtual_size == self.virtual_size:
            return
        height = self.styles.height
        if not self.size or height is None or height.is_auto:
            self.virtual_size = virtual_size
            return
        self.set_reactive(Grid.virtual_size, virtual_size)
        self._scroll_update(virtual_size)
        self.refresh()

    @property
    def match_count(self) -> int:
        """How many rows pass the filter."""
        self._recompute()
        return len(self._visible)

    @property
    def cursor_index(self) -> int:
        """Row index of the cursor in the visible list (0 when empty)."""
        self._recompute()
        return self._index.get(self.cursor_key or "", 0)

    def move_cursor(self, key: str) -> None:
        """Put the cursor on a row if it is visible; without a scroll only its old and new lines are
        drawn again (a whole-table repaint made a cursor move cost ~50 ms)."""
        self._recompute()
        if key in self._index:
            old = self._index.get(self.cursor_key or "")
            top = self.scroll_offset
            self.cursor_key = key
            self._scroll_cursor_into_view()
            if old is None or self.scroll_offset != top:
                self.refresh()
            else:
                self.refresh_line(old + 1)
                self.refresh_line(self._index[key] + 1)
            self.post_message(self.CursorMoved(self, key))

    # ----- actions ------------------------------------------------------------------------------
    def action_cursor(self, delta: int) -> None:
        self._recompute()
        if not self._visible:
            return
        idx = max(0, min(len(self._visible) - 1, self.cursor_index + delta))
        self.move_cursor(self._visible[idx])

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(1, self.size.height - 2))

    def action_jump(self, where: int) -> None:
        self._recompute()
        if self._visible:
            self.move_cursor(self._visible[where])

    def action_select(self) -> None:
        if self.cursor_key is not None:
            self.post_message(self.Selected(self, self.cursor_key))

    def _scroll_cursor_into_view(self, centre: bool = False) -> None:
        """A cursor moved off screen by a key is scrolled to the nearest edge; one the rows moved
        under (a filter set or cleared, a sort) is ``centre``d, with rows to move to either side:
        at the edge, each key after it scrolled the table (a full repaint and the scrollbar's, ~8 ms)."""
        idx = self._index.get(self.cursor_key or "")
        if idx is None:
            return
        body = max(1, self.size.height - 1)
        top = round(self.scroll_y)
        if top <= idx < top + body:
            return
        if centre:
            self.scroll_to(y=max(0, idx - body // 2), animate=False, immediate=True)
        elif idx < top:
            self.scroll_to(y=idx, animate=False, immediate=True)
        else:
            self.scroll_to(y=idx - body + 1, animate=False, immediate=True)

    async def _on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            col = self._column_at(offset.x)
            if col is not None:
                self.sort_by(col, reverse=self.sort_column == col and not self.sort_reverse)
            return
        self._recompute()
        idx = offset.y - 1 + round(self.scroll_y)
        if 0 <= idx < len(self._visible):
            key = self._visible[idx]
            if key == self.cursor_key and event.chain >= 2:
                self.post_message(self.Selected(self, key))
            self.move_cursor(key)

    def _column_at(self, x: int) -> int | None:
        pos = MARK_WIDTH
        scroll_x = round(self.scroll_x)
        for i, col in enumerate(self.columns):
            start = pos if i < self.fixed_columns else pos - scroll_x
            if start <= x < start + col.width + 1:
                return i
            pos += col.width + 1
        return None

    def _expire_highlights(self) -> None:
        """End the highlights that are due; one timer at a time (one per updated row was hundreds of
        timers, each scanning every highlight, after a refresh of 500 servers)."""
        self._expiry = None
        now = time.monotonic()
        expired = [k for k, t in self._changed.items() if t <= now]
        for k in expired:
            del self._changed[k]
        shown = self._on_screen()
        for key in {key for key, _column in expired}:  # their lines only: a refresh lit up hundreds
            self._refresh_row(key, shown)
        if self._changed:
            due = min(self._changed.values()) - now
            self._expiry = self.set_timer(max(0.05, due + 0.05), self._expire_highlights)

    # ----- rendering ----------------------------------------------------------------------------
    def _total_width(self) -> int:
        return MARK_WIDTH + sum(c.width + 1 for c in self.columns)

    def render_lines(self, crop: Region) -> list[Strip]:
        """The lines drawn before, as they were. Textual's own line cache (``_styles_cache``) draws
        every line of a widget again after each refresh of it — a filter, a focus change, the ages
        ticking — passing each through its box model and line filters into two new Strips (~0.5 ms a
        line: during a refresh of 500 servers a frame that drew the whole table took 28 ms of CPU,
        the others 5). A grid with no border, padding, outline, tint, hatch
        or opacity (its own CSS) needs none of that: its lines (cached by row) go through the line
        filters alone, whose result each Strip caches. A grid styled with any goes Textual's way.
        The widget's style is looked up once per frame, not once per line (~50 us each)."""
        self._recompute()
        self._frame_style = self.rich_style
        try:
            if not self._plain_box():
                return super().render_lines(crop)
            _base, background = self.background_colors
            filters = self.get_line_filters()
            layout = self._layout()
            strips = []
            for y in crop.line_range:
                strip = self._line_at(y, self._frame_style, layout)
                for line_filter in filters:
                    strip = strip.apply_filter(line_filter, background)
                strips.append(strip)
        finally:
            self._frame_style = None
        x1, x2 = crop.column_span
        if (x1, x2) != (0, self.region.width):
            strips = [strip.crop(x1, x2) for strip in strips]
        return strips

    def _plain_box(self) -> bool:
        """No border, padding, outline, tint, hatch or opacity: nothing for Textual to add to a line."""
        styles = self.styles
        boxed = any(edge for edge, _color in (*styles.border, *styles.outline)) or any(styles.padding)
        shaded = styles.tint.a or styles.text_opacity != 1.0 or self.opacity != 1.0
        return not (boxed or shaded or styles.has_rule("hatch"))

    def render_line(self, y: int) -> Strip:
        self._recompute()
        base = self._frame_style if self._frame_style is not None else self.rich_style
        return self._line_at(y, base, self._layout())

    def _layout(self) -> tuple[int, int, tuple[object, ...]]:
        """What every line of a frame is drawn for: its width, the first row on screen and the
        columns' layout — looked up once per frame, not once per line (~15 us each)."""
        width = self.size.width
        columns = (tuple(c.width for c in self.columns), self.fixed_columns, round(self.scroll_x), width)
        return width, round(self.scroll_y), columns

    def _line_at(self, y: int, base: Style, layout: tuple[int, int, tuple[object, ...]]) -> Strip:
        width, top, columns = layout
        if y == 0:
            return self._line(None, base, width, columns)
        idx = y - 1 + top
        if idx >= len(self._visible):
            if self._blank is None or self._blank[0] != (width, base):
                self._blank = ((width, base), Strip.blank(width, base))
            return self._blank[1]
        return self._line(self._visible[idx], base, width, columns)

    def _line(self, key: str | None, base: Style, width: int, columns: tuple[object, ...]) -> Strip:
        """A row's line, or the header's (``key`` None). A line is drawn again only when its row or
        how it is shown changed: filtering and scrolling show lines drawn before (a full repaint of
        50 lines cost ~25 ms)."""
        if key is None:
            row_style = base + self.get_component_rich_style("grid--header")
            drawn_for: tuple[object, ...] = (row_style, self.sort_column, self.sort_reverse,
                                             tuple(c.label for c in self.columns), columns)
        else:
            own_style = self._row_style.get(key)
            row_style = base if own_style is None else base + own_style
            marked, cursor = key in self.marks, key == self.cursor_key
            if marked:
                row_style += self.get_component_rich_style("grid--marked", partial=True)
            if cursor:
                row_style += self.get_component_rich_style("grid--cursor", partial=True)
            highlighted = tuple(i for i in range(len(self.columns)) if (key, i) in self._changed) \
                if self._changed else ()
            drawn_for = (row_style, marked, cursor, highlighted, columns)
        drawn = self._lines.get(key)
        if drawn is not None and drawn[0] == drawn_for:
            return drawn[1]
        accents: dict[int | None, Style]  # by column: what is drawn over the row's style
        if key is None:
            accents = {self.sort_column: self.get_component_rich_style("grid--sorted", partial=True)}
            cells = [self._header_label(i, c) for i, c in enumerate(self.columns)]
            gutter = "  "
        else:
            changed = self.get_component_rich_style("grid--changed", partial=True)
            accents = {i: changed for i in highlighted}
            cells = self._rows[key]
            gutter = ("▶" if cursor else " ") + ("●" if marked else " ")
        fixed: list[Segment] = [Segment(gutter, row_style)]
        scroll: list[Segment] = []
        for i, col in enumerate(self.columns):
            cell = cells[i] if i < len(cells) else Text("")
            accent = accents.get(i)
            style = row_style if accent is None else row_style + accent
            (fixed if i < self.fixed_columns else scroll).extend(self._cell_segments(cell, col.width, style))
        fixed_strip = Strip(fixed)
        scroll_strip = Strip(scroll).crop(round(self.scroll_x), round(self.scroll_x) + width)
        line = Strip.join([fixed_strip, scroll_strip]).adjust_cell_length(width, row_style).crop(0, width)
        if len(self._lines) > 4096:
            self._lines.clear()
        self._lines[key] = (drawn_for, line)
        return line

    def _cell_segments(self, cell: Text, width: int, style: Style) -> list[Segment]:
        """The cell cut or padded to ``width`` plus the column gap, drawn over ``style`` (cached)."""
        key = (cell.plain, tuple(cell.spans), cell.style, width, style)
        segments = self._cells.get(key)
        if segments is None:
            text = cell.copy()
            text.truncate(width, overflow="ellipsis", pad=True)
            text.append(" ")
            segments = [Segment(s.text, style + s.style if s.style else style)
                        for s in text.render(self.app.console)]
            if len(self._cells) > 16384:
                self._cells.clear()
            self._cells[key] = segments
        return segments

    def _header_label(self, i: int, col: Column) -> Text:
        if i != self.sort_column:
            return Text(col.label)
        arrow = "▼" if self.sort_reverse else "▲"
        label = col.label if len(col.label) + 2 <= col.width else col.label[: max(0, col.width - 2)]
        return Text(f"{label} {arrow}")
