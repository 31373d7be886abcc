"""The result of the last action, per server: done (read back), not verified (why), failed (why).

Reopenable from any screen (``S``) until the next action replaces it; the audit log keeps them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from emconsole.screens.format import clip
from emconsole.screens.grid import Column, Grid
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from emconsole.models import OutcomeStatus

if TYPE_CHECKING:
    from emconsole.screens.app import ActionRun

_MARK = {
    OutcomeStatus.DONE: Text("✓ done", style="green"),
    OutcomeStatus.NOT_VERIFIED: Text("? not verified", style="yellow"),
    OutcomeStatus.FAILED: Text("✖ failed", style="bold red"),
}


class ResultsScreen(ModalScreen[None]):
    """One row per server of the last action."""

    AUTO_FOCUS = "Grid"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Close", id="results.close"),
    ]

    def __init__(self, run: ActionRun) -> None:
        super().__init__()
        self.run = run
        self.grid = Grid(
            [Column("server", "Server", max_width=24), Column("status", "Result", max_width=16),
             Column("time", "Took", max_width=6), Column("detail", "Detail", max_width=200)],
            markable=False,
        )

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self._title(), id="results-title")
            yield self.grid

    def on_mount(self) -> None:
        for outcome in self.run.outcomes:
            detail = outcome.detail or (outcome.failure.message if outcome.failure else "")
            self.grid.set_row(outcome.server, [
                Text(outcome.server), _MARK[outcome.status].copy(), Text(f"{outcome.duration:.1f}s"),
                Text(clip(detail, 200)),
            ])

    def _title(self) -> Text:
        run = self.run
        counts = {s: sum(o.status is s for o in run.outcomes) for s in OutcomeStatus}
        text = Text(("DRY RUN — " if run.dry_run else "") + run.title, style="bold")
        text.append(f"   ✓ {counts[OutcomeStatus.DONE]}  ? {counts[OutcomeStatus.NOT_VERIFIED]}"
                    f"  ✖ {counts[OutcomeStatus.FAILED]}")
        if not run.finished:
            text.append("  (running…)", style="cyan")
        return text

    def action_close(self) -> None:
        self.dismiss(None)
