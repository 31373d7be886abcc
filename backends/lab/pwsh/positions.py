"""Where things are in a script's text, for PowerShell's ``At line:N char:M`` error positions.

A compiled program is shared by every script text that differs from the one it was compiled from
only in the contents of its plain single-quoted strings (``templates.py``), so a node's ``Site`` is
kept in the coordinates of that first text and a ``Source`` maps it onto the text being run.
Contents never hold a line break, so lines are the same in every such text; only columns move.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from emconsole.backends.lab.pwsh.api import ErrorRecord, PSError
from emconsole.backends.lab.pwsh.syntax import SyntaxNode


class Site:
    """A node's span in the text its program was compiled from."""

    __slots__ = ("end", "start")

    def __init__(self, node: SyntaxNode) -> None:
        self.start = node.start
        self.end = node.end


class Source:
    """One script text a program runs for: maps Sites onto it and words their error positions."""

    __slots__ = ("_ends", "_invocations", "_shifts", "_slices", "text")

    def __init__(self, text: str, ends: Sequence[int] = (), shifts: Sequence[int] = (0,)) -> None:
        """``ends``: where each string content ends in the compiled text (ascending); ``shifts[i]``:
        how much longer the first ``i`` contents are here than there."""
        self.text = text
        self._ends = ends
        self._shifts = shifts
        self._invocations: dict[Site, str] = {}
        self._slices: dict[Site, str] = {}

    def _offset(self, position: int) -> int:
        return position + self._shifts[bisect_right(self._ends, position)]

    def slice(self, site: Site) -> str:
        """The node's text here."""
        found = self._slices.get(site)
        if found is None:
            found = self._slices[site] = self.text[self._offset(site.start) : self._offset(site.end)]
        return found

    def invocation(self, site: Site) -> str:
        """``At line:N char:M`` plus the source line and a ``~`` underline, as PowerShell prints them."""
        found = self._invocations.get(site)
        if found is None:
            text, start, end = self.text, self._offset(site.start), self._offset(site.end)
            line_start = text.rfind("\n", 0, start) + 1
            line_end = text.find("\n", start)
            line_end = len(text) if line_end == -1 else line_end
            line = text[line_start:line_end].rstrip("\r")
            column = start - line_start + 1
            width = max(1, min(end, line_end) - start)
            row = text.count("\n", 0, start) + 1
            found = self._invocations[site] = (
                f"At line:{row} char:{column}\r\n+ {line}\r\n+ {' ' * (column - 1)}{'~' * width}"
            )
        return found

    def locate(self, record: ErrorRecord, site: Site) -> None:
        """An error positioned at the site, unless it was positioned already (an inner one was)."""
        if not record.invocation:
            record.invocation = self.invocation(site)

    def not_supported(self, site: Site, what: str) -> PSError:
        return PSError(
            ErrorRecord(
                message=f"{what} is not supported by the lab's PowerShell (outside POWERSHELL-SUBSET.md).",
                fully_qualified_error_id="NotSupportedInLab",
                category="NotImplemented",
                exception_type="System.NotSupportedException",
                invocation=self.invocation(site),
            )
        )
