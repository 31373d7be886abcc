"""The real console app under Pilot (``App.run_test``), clocking every frame it hands to the terminal.

Why a subclass: under ``run_test`` Textual composes each frame but skips turning it into terminal
bytes; ``FramedApp`` does that work too (so a frame costs what it costs on a terminal) and records
when each frame was done and what it showed — the cursor row and filter of the screen's table —
so a keystroke's latency is the time from posting the key, as a terminal driver posts it, to the
first frame that shows its effect. With it, the event loop's CPU over the same span (``key_cpu``):
unlike the latency it does not depend on what else runs on a shared machine, and it is what the
keystroke waited for at best — its own work and whatever the loop did before its frame.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emconsole.screens.app import EmConsoleApp
from emconsole.screens.grid import Grid
from labproc import process_cpu_s
from rich.console import RenderableType
from textual import events
from textual._compositor import CompositorUpdate
from textual.pilot import Pilot
from textual.screen import Screen

from emconsole.cli.console_cmd import config_starter
from emconsole.config import Config
from emconsole.credentials import PasswordSource


@dataclass(frozen=True)
class Frame:
    """One frame: when it was ready for the terminal (and the event loop's CPU clock then), and the
    table state it showed."""

    at: float
    cpu: float
    cursor: int | None
    filter: str | None
    focused: str | None


class FrameClock:
    """Mixed into an App: serialise each frame as a terminal driver would, and record it."""

    frames: list[Frame]
    terminal_bytes: int
    #: Event-loop CPU seconds from posting each key to its frame, in the order the keys were typed.
    key_cpu: list[float]

    def _display(self, screen: Screen[Any], renderable: RenderableType | None) -> None:
        app: Any = self
        if isinstance(renderable, CompositorUpdate):
            sent = len(renderable.render_segments(app.console))
            self.terminal_bytes = getattr(self, "terminal_bytes", 0) + sent
        super()._display(screen, renderable)  # type: ignore[misc]
        if renderable is not None:
            focused = getattr(screen.focused, "id", None)
            self.frames.append(Frame(time.perf_counter(), time.thread_time(), *self.shown(screen), focused))

    def shown(self, screen: Screen[Any]) -> tuple[int | None, str | None]:
        """The cursor row and filter the screen's table shows (the console's screens keep a ``grid``)."""
        grid = getattr(screen, "grid", None)
        return getattr(grid, "cursor_index", None), getattr(grid, "filter_text", None)

    async def keystroke(self, key: str, shows: Callable[[Frame], bool], char: str | None = None,
                        timeout_s: float = 60.0) -> float:
        """Seconds from posting ``key`` (typing ``char``) to the first frame for which ``shows`` is true."""
        app: Any = self
        first = len(self.frames)
        event = events.Key(key, char if char is not None else key if len(key) == 1 else None)
        started, cpu = time.perf_counter(), time.thread_time()
        app.post_message(event)
        while time.perf_counter() - started < timeout_s:
            await asyncio.sleep(0.002)
            for frame in self.frames[first:]:
                if frame.at >= started and shows(frame):
                    self.key_cpu.append(frame.cpu - cpu)
                    return frame.at - started
        raise TimeoutError(f"no frame showed the effect of {key!r} within {timeout_s} s")


class FramedConsole(FrameClock, EmConsoleApp):
    """The console (real screens, real engine) with the frame clock."""

    # Textual looks for a relative CSS_PATH next to the subclass: name the console's own file.
    CSS_PATH = str(Path(inspect.getfile(EmConsoleApp)).with_name(EmConsoleApp.CSS_PATH))

    def __init__(self, config: Config) -> None:
        super().__init__(config_starter(config, PasswordSource()))
        self.frames = []
        self.key_cpu = []


@asynccontextmanager
async def running_console(config: Config, size: tuple[int, int] = (160, 50)
                          ) -> AsyncIterator[tuple[FramedConsole, Pilot[int]]]:
    """The console on ``config`` under Pilot, once its engine is up (its first refresh has started)
    and the fleet screen lists every server."""
    app = FramedConsole(config)
    async with app.run_test(size=size) as pilot:
        deadline = time.perf_counter() + 60
        while app.engine is None and app.start_error is None and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        if app.engine is None:
            raise SystemExit(app.start_error or "the console's engine did not start within 60 s")
        # The rows reach the fleet screen in batches after the engine is up: keys wait for all of them.
        while len(app.screen.query_one(Grid).row_keys) < len(app.views()) and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        yield app, pilot


async def wait_refreshed(app: EmConsoleApp, timeout_s: float = 300.0) -> float:
    """Wait for the refresh in flight to end; seconds waited."""
    started = time.perf_counter()
    while app.refreshing and time.perf_counter() - started < timeout_s:
        await asyncio.sleep(0.01)
    return time.perf_counter() - started


def worker_cpu_s(app: EmConsoleApp) -> float:
    """CPU seconds so far of the console's WinRM worker process (0 before it starts)."""
    pid = getattr(app.engine.backend, "worker_pid", None) if app.engine is not None else None
    return process_cpu_s(pid) if pid else 0.0
