"""Which mitigation(s) a block / unblock / delete from the fleet is about."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import SelectionList, Static


class MitigationPicker(ModalScreen[list[str]]):
    """Space selects, enter goes on, escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="picker.cancel"),
        Binding("enter", "done", "OK", id="picker.done", priority=True),
    ]

    def __init__(self, kind: str, ids: list[str]) -> None:
        super().__init__()
        self.kind = kind
        self.ids = ids

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text(f"{self.kind.capitalize()} which mitigation? (space selects, enter OK)",
                              style="bold"))
            yield SelectionList[str](*[(Text(mid), mid) for mid in self.ids], id="picker")

    def action_done(self) -> None:
        chosen = list(self.query_one("#picker", SelectionList).selected)
        if not chosen:
            highlighted = self.query_one("#picker", SelectionList).highlighted
            if highlighted is not None:
                chosen = [self.ids[highlighted]]
        self.dismiss(chosen or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
