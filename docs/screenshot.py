"""Write docs/fleet.svg: the fleet screen of ``emconsole --demo`` after its first refresh.

    python docs/screenshot.py [--out docs/fleet.svg] [--size 140x42]

The demo lab runs in this process on a manual lab clock (the EM runs and events are the same every
time) and on the lab's default ports when they are free, so a new screenshot differs from the last
one only where it should (ages, the clock). The app is the real console on the real engine; the
script waits for every server to answer (the hung one times out after the demo's 5 s), marks two
servers to show what a selection looks like, and saves the screen.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from emconsole.backends.lab.spec import DEFAULT_FIRST_PORT, SpecError

DEFAULT_OUT = Path(__file__).resolve().parent / "fleet.svg"


async def screenshot(size: tuple[int, int]) -> str:
    """The SVG of the fleet screen once the first refresh has finished."""
    from emconsole.backends.lab.demo import start_demo_lab
    from emconsole.screens.app import EmConsoleApp, Session

    from emconsole.cli.console_cmd import session_for

    try:
        lab, config = start_demo_lab(clock_rate=None, first_port=DEFAULT_FIRST_PORT)
    except SpecError:  # the default ports are taken: any free range will do
        lab, config = start_demo_lab(clock_rate=None)

    async def start() -> Session:
        return await session_for(config, environment="demo lab")

    try:
        app = EmConsoleApp(start)
        async with app.run_test(size=size) as pilot:
            deadline = time.monotonic() + 120
            while app.engine is None or app.refreshing or any(v.refreshed_at is None for v in app.views()):
                if time.monotonic() > deadline:
                    raise TimeoutError("the demo fleet did not finish its first refresh in 120 s")
                await asyncio.sleep(0.1)
            await pilot.press("down", "down", "space", "down", "down", "space", "up")
            await asyncio.sleep(2.2)  # let the changed-cell highlights of the last answers fade
            app.clear_notifications()
            await pilot.pause()
            return app.export_screenshot(title="emconsole --demo")
    finally:
        lab.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: docs/fleet.svg")
    parser.add_argument("--size", default="140x42", help="terminal COLUMNSxROWS (default 140x42)")
    args = parser.parse_args()
    columns, _, rows = args.size.partition("x")
    svg = asyncio.run(screenshot((int(columns), int(rows))))
    args.out.write_text(svg, encoding="utf-8")
    print(f"wrote {args.out} ({len(svg) // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
