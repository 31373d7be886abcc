"""The console's virtualised table: filter, sort, marks and highlights survive row updates."""

from __future__ import annotations

import pytest
from consolekit import count_layouts
from emconsole.screens import grid as grid_module
from emconsole.screens.grid import Column, Grid
from rich.text import Text
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.strip import Strip


class GridApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Grid([Column("name", "Server"), Column("state", "State")], id="g")


def fill(grid: Grid, rows: int) -> None:
    """Rows EX0..EX<rows-1>, each "ok"."""
    for i in range(rows):
        grid.set_row(f"EX{i}", [f"EX{i}", "ok"])


def _text(app: App[None]) -> str:
    return "\n".join(s.text for s in app.screen._compositor.render_strips())


async def test_filter_invert_sort_and_marks_survive_updates() -> None:
    app = GridApp()
    async with app.run_test(size=(60, 12)) as pilot:
        grid = app.query_one(Grid)
        for i in (10, 2, 1):
            grid.set_row(f"EX{i}", [f"EX{i}", "ok"])
        grid.set_filter("EX1")
        await pilot.pause()
        assert grid.visible_keys == ["EX10", "EX1"] and grid.match_count == 2
        grid.set_filter("!EX1")
        await pilot.pause()
        assert grid.visible_keys == ["EX2"]
        grid.set_filter("EX[")  # unfinished regex: matched literally, never an exception
        await pilot.pause()
        assert grid.visible_keys == [] and grid.filter_error
        grid.set_filter("")
        grid.sort_by(0)
        await pilot.pause()
        assert grid.visible_keys == ["EX1", "EX2", "EX10"]  # natural order
        grid.move_cursor("EX2")
        grid.toggle_mark()
        grid.set_row("EX2", ["EX2", "error"])  # a refresh rewrites the row
        await pilot.pause()
        assert grid.cursor_key == "EX2" and grid.marks == {"EX2"}
        assert ("EX2", 1) in grid._changed and ("EX2", 0) not in grid._changed
        grid.mark_visible()
        assert grid.marks == {"EX1", "EX2", "EX10"}


async def test_server_text_is_never_markup() -> None:
    app = GridApp()
    async with app.run_test(size=(60, 8)) as pilot:
        grid = app.query_one(Grid)
        grid.set_row("x", [Text("[bold]EX1[/]"), "[red"])
        await pilot.pause()
        assert "[bold]EX1[/]" in _text(app) and "[red" in _text(app)


async def test_cursor_move_redraws_the_old_and_the_new_line() -> None:
    """A move repaints only the two lines it changes; a move that scrolls repaints the table."""
    app = GridApp()
    async with app.run_test(size=(40, 5)) as pilot:  # header + 4 rows on screen
        grid = app.query_one(Grid)
        fill(grid, 8)
        grid.focus()
        await pilot.pause()
        await pilot.press("down", "down")
        cursor_lines = [line for line in _text(app).splitlines() if "▶" in line]
        assert len(cursor_lines) == 1 and "EX2" in cursor_lines[0]
        await pilot.press("down", "down", "down")  # EX5: past the last row on screen
        lines = _text(app).splitlines()
        assert [line for line in lines if "▶" in line] == [next(line for line in lines if "EX5" in line)]
        assert not any("EX0" in line for line in lines)
        await pilot.press("up")
        cursor_lines = [line for line in _text(app).splitlines() if "▶" in line]
        assert len(cursor_lines) == 1 and "EX4" in cursor_lines[0]


async def test_drawn_lines_follow_every_change() -> None:
    """Lines are kept between repaints: a changed row, cell, mark, width or filter still shows at once."""
    app = GridApp()
    async with app.run_test(size=(60, 8)) as pilot:
        grid = app.query_one(Grid)
        fill(grid, 4)
        grid.focus()
        await pilot.pause()

        def shown(key: str, text: str) -> bool:
            return any(key in line and text in line for line in _text(app).splitlines())

        grid.set_row("EX1", ["EX1", "no"], highlight=False)  # same width: only this line is drawn
        await pilot.pause()
        assert shown("EX1", "no")
        grid.set_cell("EX2", 1, Text("up"))
        await pilot.pause()
        assert shown("EX2", "up")
        grid.toggle_mark("EX3")
        await pilot.pause()
        assert shown("EX3", "●")
        grid.set_filter("EX[12]")
        await pilot.pause()
        grid.set_row("EX0", ["EX0", "a much longer state than before"], highlight=False)  # widens column 2
        grid.set_filter("")
        await pilot.pause()
        assert shown("EX0", "a much longer state than before") and shown("EX1", "no")


def shown_keys(app: App[None]) -> list[str]:
    """The row keys on screen, top to bottom."""
    lines = _text(app).splitlines()[1:]
    return [word for line in lines for word in line.split()[:2] if word.startswith("EX")]


class CountingGrid(Grid):
    """Counts the lines the compositor asks it for (it asks only when the grid was refreshed)."""

    lines_drawn = 0

    def render_lines(self, crop: Region) -> list[Strip]:
        self.lines_drawn += crop.height
        return super().render_lines(crop)


class CountingApp(App[None]):
    def compose(self) -> ComposeResult:
        yield CountingGrid([Column("name", "Server"), Column("state", "State")], id="g")


async def test_a_filter_draws_only_when_the_rows_shown_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """Typing a filter that keeps the same rows draws no line; one that changes them draws the table
    without laying the screen out, and the scrollbar follows; only a scrollbar going lays out."""
    app = CountingApp()
    async with app.run_test(size=(60, 12)) as pilot:  # header + 11 rows
        layouts = count_layouts(monkeypatch, app.screen)
        grid = app.query_one(CountingGrid)
        fill(grid, 30)
        for _ in range(20):  # until the frames of the fill are all drawn (a loaded machine lags)
            grid.lines_drawn = 0
            await pilot.pause(0.05)
            if grid.lines_drawn == 0:
                break
        assert grid.show_vertical_scrollbar and grid.vertical_scrollbar.window_virtual_size == 31
        layouts[:] = []
        grid.set_filter("EX")  # every row still passes
        await pilot.pause()
        assert grid.lines_drawn == 0 and grid.match_count == 30
        grid.set_filter("EX1|EX2")  # 22 rows: still more than the screen holds
        await pilot.pause()
        assert grid.lines_drawn >= 11 and layouts == []
        assert grid.vertical_scrollbar.window_virtual_size == 23 and grid.show_vertical_scrollbar
        assert shown_keys(app)[:3] == ["EX1", "EX2", "EX10"] and len(shown_keys(app)) == 11
        grid.set_filter("EX1[0-3]")  # 4 rows fit: the scrollbar goes, and that lays out
        await pilot.pause()
        assert not grid.show_vertical_scrollbar and layouts
        assert shown_keys(app) == ["EX10", "EX11", "EX12", "EX13"]


async def test_unchanged_lines_are_handed_out_again_and_a_boxed_grid_goes_textuals_way() -> None:
    """The compositor gets the very Strips it got before for rows that did not change (Textual's own
    line cache would draw them all again after a refresh); a grid given a border is drawn by Textual."""
    app = GridApp()
    async with app.run_test(size=(60, 8)) as pilot:
        grid = app.query_one(Grid)
        fill(grid, 4)
        await pilot.pause()
        whole = grid.region.reset_offset
        first = grid.render_lines(whole)
        grid.set_row("EX1", ["EX1", "no"], highlight=False)
        grid.refresh()
        await pilot.pause()
        after = grid.render_lines(whole)
        assert [a is b for a, b in zip(first, after, strict=True)] == [True, True, False, *[True] * 5]
        assert "no" in after[2].text
        grid.styles.border = ("solid", "red")
        await pilot.pause()
        lines = _text(app).splitlines()
        assert lines[0].startswith("┌") and any("EX1" in line and "no" in line for line in lines)


async def test_a_cursor_the_rows_moved_under_is_centred_and_a_key_scrolls_to_the_edge() -> None:
    """Clearing a filter leaves the cursor's row mid-screen, rows to move to either side without a
    scroll; a key past the last row on screen scrolls by one row."""
    app = GridApp()
    async with app.run_test(size=(60, 12)) as pilot:  # header + 11 rows
        grid = app.query_one(Grid)
        fill(grid, 40)
        grid.focus()
        grid.set_filter("EX25")
        await pilot.pause()
        assert grid.cursor_key == "EX25"
        grid.set_filter("")
        await pilot.pause()
        assert shown_keys(app)[5] == "EX25" and len(shown_keys(app)) == 11  # EX20..EX30, cursor in the middle
        grid.move_cursor("EX30")
        await pilot.press("down")
        assert shown_keys(app)[-1] == "EX31" and grid.cursor_key == "EX31"


async def test_highlights_end_one_timer_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Changed cells lose their highlight when due, rows changed later later; one timer is pending."""
    monkeypatch.setattr(grid_module, "HIGHLIGHT_SECONDS", 0.6)
    app = GridApp()
    async with app.run_test(size=(60, 8)) as pilot:
        grid = app.query_one(Grid)
        fill(grid, 3)
        grid.set_row("EX0", ["EX0", "no"])
        grid.set_row("EX1", ["EX1", "no"])
        first_timer = grid._expiry
        await pilot.pause(0.3)
        grid.set_row("EX2", ["EX2", "no"])
        assert grid._expiry is first_timer and set(grid._changed) == {("EX0", 1), ("EX1", 1), ("EX2", 1)}
        await pilot.pause(0.45)  # the first two are due (0.65 s), the third not yet (0.95 s)
        assert set(grid._changed) == {("EX2", 1)} and grid._expiry is not None
        await pilot.pause(0.5)
        assert not grid._changed and grid._expiry is None


async def test_rows_changed_off_screen_show_when_scrolled_to(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only rows on screen are repainted as they change; the others show their new cells when
    scrolled to, and a column rewritten in one pass widens and is found by the filter."""
    app = GridApp()
    async with app.run_test(size=(40, 5)) as pilot:  # header + 4 rows on screen
        grid = app.query_one(Grid)
        fill(grid, 8)
        grid.focus()
        await pilot.pause()
        repainted: list[int] = []
        monkeypatch.setattr(grid, "refresh_line", repainted.append)
        grid.set_row("EX6", ["EX6", "no"], highlight=False)
        grid.set_row("EX1", ["EX1", "no"], highlight=False)
        grid.set_cells(1, [("EX0", Text("up")), ("EX7", Text("a longer state"))])
        assert repainted == [2, 1]  # EX1 and EX0 (line 0 is the header); EX6 and EX7 are off screen
        monkeypatch.undo()
        await pilot.press("end")
        lines = _text(app).splitlines()
        assert any("EX6" in line and "no" in line for line in lines)
        assert any("EX7" in line and "a longer state" in line for line in lines)
        grid.set_filter("longer")
        await pilot.pause()
        assert grid.visible_keys == ["EX7"]


async def test_a_highlight_ends_by_drawing_its_line_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """When a highlight is due, that row's line (not the whole table) is drawn again without it."""
    monkeypatch.setattr(grid_module, "HIGHLIGHT_SECONDS", 0.2)
    app = GridApp()
    async with app.run_test(size=(40, 6)) as pilot:
        grid = app.query_one(Grid)
        fill(grid, 3)
        await pilot.pause()
        grid.set_row("EX1", ["EX1", "no"])
        await pilot.pause()
        repainted: list[int] = []
        monkeypatch.setattr(grid, "refresh_line", repainted.append)
        await pilot.pause(0.5)
        assert not grid._changed and repainted == [2]  # line 0 is the header
