"""`?`: the keys of the screen the operator is on (as remapped by the config's key map)."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static


def keys_of(screen: Screen[Any]) -> list[tuple[str, str, bool]]:
    """(key, description, enabled) for every binding active on ``screen``, in binding order."""
    out: list[tuple[str, str, bool]] = []
    seen: set[str] = set()
    for key, active in screen.active_bindings.items():
        binding = active.binding
        label = binding.description or binding.action
        ident = f"{binding.action}|{label}"
        if ident in seen:
            continue
        seen.add(ident)
        shown = screen.app.get_key_display(binding)
        out.append((shown or key, label, bool(active.enabled)))
    return out


class HelpScreen(ModalScreen[None]):
    """A list of keys; greyed ones are unavailable now (read-only mode, nothing selected)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close", id="help.close"),
    ]

    def __init__(self, screen: Screen[Any]) -> None:
        super().__init__()
        self.keys = keys_of(screen)
        self.title_text = str(getattr(screen, "TITLE_TEXT", "") or type(screen).__name__)

    def compose(self) -> ComposeResult:
        text = Text()
        for key, label, enabled in self.keys:
            style = "" if enabled else "dim strike"
            text.append(f"{key:>12}  ", style="bold " + ("" if enabled else "dim"))
            text.append(label + ("  (unavailable)" if not enabled else "") + "\n", style=style)
        with Vertical(id="dialog"):
            yield Static(Text(f"Keys — {self.title_text}", style="bold"))
            with VerticalScroll():
                yield Static(text)

    def action_close(self) -> None:
        self.dismiss(None)
