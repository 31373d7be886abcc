"""Console responsiveness: time to first frame of ``emconsole --demo``, and the Grid filter at scale.

Not a unit test: a measurement to print and compare. Two numbers the console promises (issue 6):
the demo's first frame in under 1.5 s, and a regex filter over ~5,000 rows within 100 ms.

    python bench/ui.py [--runs 3] [--rows 5000]

First frame: ``emconsole --demo`` runs in a pseudo-terminal (120x40) as an operator starts it; the
clock runs from the spawn to the first bytes of the top bar on the terminal, then on to the lab's
servers showing up (engine up) and to the end of the first refresh of all 36 servers; then ctrl+q.
Grid filter: a headless app holds a Grid with the mitigation list's columns and ``--rows`` rows;
one filter = ``set_filter`` + recomputing the visible rows + rendering the lines on screen.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial

MARKS = {
    "first frame": re.compile(rb"emconsole"),
    "servers listed": re.compile(rb"36 servers"),
    "first refresh done": re.compile(rb"refresh 30s"),
}


def first_frame(timeout: float = 60.0) -> dict[str, float]:
    """Seconds from spawning ``emconsole --demo`` to each mark in ``MARKS`` (missing: not reached)."""
    from ptyterm import marks

    return marks([sys.executable, "-m", "emconsole", "--demo"], MARKS, timeout)


def grid_filter(rows: int, patterns: list[str]) -> dict[str, float]:
    """Milliseconds per filter (median of 5) over ``rows`` rows, for each pattern."""
    from emconsole.screens.grid import Column, Grid
    from rich.text import Text
    from textual.app import App, ComposeResult

    columns = [Column("server", "Server", 20), Column("id", "ID", 12), Column("type", "Type", 12),
               Column("status", "Status", 14), Column("found", "Found on server", 60),
               Column("desc", "Description", 80)]
    m2_rule = "outbound EEMS M2.1 OWA CSP - outbound (Default Web Site/owa)"
    kinds = [("PING1", "heartbeat", "Applied", "—"),
             ("M2.1.0", "url rewrite", "Applied", m2_rule),
             ("M1.1", "url rewrite", "Blocked", "—"),
             ("LAB-SVC1.1", "service", "Applied", "service MSExchangeImap4 Stopped/Disabled")]
    results: dict[str, float] = {}

    class Bench(App[None]):
        def compose(self) -> ComposeResult:
            yield Grid(columns, markable=True, id="grid")

    async def run() -> None:
        app = Bench()
        async with app.run_test(size=(160, 50)) as pilot:
            grid = app.query_one(Grid)
            for i in range(rows):
                mid, kind, status, found = kinds[i % len(kinds)]
                server = f"EX{i // 10:04d}"
                cells = [server, mid, kind, status, found, f"Mitigation {mid} for server {server}"]
                grid.set_row(f"{server}\x00{mid}", [Text(c) for c in cells])
            await pilot.pause()
            for pattern in patterns:
                times = []
                for _ in range(5):
                    times.append(_timed(partial(_filter_and_draw, grid, pattern)))
                    _filter_and_draw(grid, "")
                results[pattern] = statistics.median(times) * 1000

    asyncio.run(run())
    return results


def _filter_and_draw(grid: object, pattern: str) -> None:
    from emconsole.screens.grid import Grid

    assert isinstance(grid, Grid)
    grid.set_filter(pattern)
    grid.match_count  # noqa: B018 - forces the recompute the deferred refresh would do
    for y in range(grid.size.height):
        grid.render_line(y)


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="demo starts to time (default 3)")
    parser.add_argument("--rows", type=int, default=5000, help="rows in the filtered Grid (default 5000)")
    args = parser.parse_args()
    print(f"emconsole --demo in a 120x40 pseudo-terminal, {args.runs} runs (seconds from spawn):")
    runs = [first_frame() for _ in range(args.runs)]
    for name in [*MARKS, "quit"]:
        values = [r[name] for r in runs if name in r]
        shown = " ".join(f"{v:.2f}" for v in values) or "not reached"
        best = f"  (median {statistics.median(values):.2f})" if values else ""
        print(f"  {name:<20} {shown}{best}")
    print(f"Grid filter over {args.rows} rows "
          "(set_filter + recompute + draw the visible lines, median of 5):")
    patterns = ["M2", "!PING1", "EX00[0-4].*Applied", "no-such-row"]
    for pattern, ms in grid_filter(args.rows, patterns).items():
        print(f"  {pattern!r:<24} {ms:6.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
