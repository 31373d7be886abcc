"""The last wall between server text and the operator's terminal: no control character is ever sent.

Cells and panes are ``rich.text.Text`` (never markup), but Text keeps ESC, NUL, C1 controls and bidi
overrides, and Textual writes them out as they are: an escape sequence in a rule name, an event
message or a command's raw output would move the cursor, recolour or retitle the terminal. This
filter runs on every line the app draws (``EmConsoleApp.get_line_filters``) and shows each such
character as ``?`` and a line break or tab inside a line as a space — the headless renderer's rule
(``emconsole.textsafe``), one cell for one so columns stay aligned.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.text import Text
from textual.color import Color
from textual.filter import LineFilter

from emconsole.textsafe import CONTROL_CHARACTERS, visible


def _raw(text: str) -> bool:
    return CONTROL_CHARACTERS.search(text) is not None or "\n" in text or "\t" in text


def in_line(text: str) -> str:
    """Text as one line of cells: a line break or tab inside a cell is a space (as the headless
    tables have it), every other control character ``?``."""
    return visible(text.translate(_SPACES))


_SPACES = str.maketrans("\t\n", "  ")


def one_line(text: Text) -> Text:
    """A table cell as one line: ``in_line`` on its characters, styles kept (the length is kept)."""
    if not _raw(text.plain):
        return text
    shown = text.copy()
    shown.plain = in_line(text.plain)
    return shown


class ShowControlCharacters(LineFilter):
    """Replace control characters in every text segment (segments that *are* control codes stay)."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        if not any(_raw(s.text) for s in segments if not s.control):
            return segments
        return [s if s.control or not _raw(s.text) else Segment(in_line(s.text), s.style) for s in segments]


#: One instance for the whole app: Textual caches filtered lines per filter object.
SHOW_CONTROL_CHARACTERS = ShowControlCharacters()
