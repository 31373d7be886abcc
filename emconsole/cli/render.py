"""Tables and documents for the headless commands: a rich table on a terminal, plain text when piped,
CSV, Markdown, HTML, JSON.

Everything that came from a server may hold control characters (an escape sequence in a rule name
must not repaint the operator's terminal): every text cell is cleaned here, for every format but
JSON (whose encoder escapes them). CSV cells that a spreadsheet would run as a formula get a
leading apostrophe. Rich is imported only when a terminal is drawn.
"""

from __future__ import annotations

import csv
import html
import io
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import IO

from pydantic import BaseModel

from emconsole.textsafe import visible

TABLE_FORMATS = ("table", "json", "csv", "markdown")
_FORMULA_START = ("=", "+", "@", "\t", "\r")


def clean(text: object) -> str:
    """One line of printable text: controls and bidi overrides shown as ``?``, newlines as spaces."""
    if isinstance(text, Enum):
        text = text.value
    value = "" if text is None else str(text)
    return visible(value.replace("\r\n", " ").replace("\n", " "))


@dataclass
class Table:
    """Columns and rows of plain strings (already worded; no markup)."""

    columns: Sequence[str]
    rows: list[list[str]] = field(default_factory=list)
    title: str = ""

    def add(self, *cells: object) -> None:
        self.rows.append([clean(c) for c in cells])


def is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def plain(table: Table) -> str:
    """Columns padded to their widest cell, two spaces apart (for pipes, grep and awk)."""
    widths = [len(c) for c in table.columns]
    for row in table.rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in [list(table.columns), *table.rows]]
    return "\n".join(lines) + "\n"


def md_text(text: str) -> str:
    """Text safe inside Markdown: no raw HTML (``<`` ``>`` ``&`` as entities), pipes escaped."""
    return html.escape(clean(text), quote=False).replace("\\", "\\\\").replace("|", "\\|")


def markdown(table: Table) -> str:
    def cell(text: str) -> str:
        return md_text(text) or " "

    out = ["| " + " | ".join(cell(c) for c in table.columns) + " |",
           "|" + "|".join("---" for _ in table.columns) + "|"]
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(out) + "\n"


def csv_text(table: Table) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow(["'" + c if c.startswith(_FORMULA_START) else c for c in row])
    return buf.getvalue()


def html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>\n"
                   for row in table.rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n"


def _rich(table: Table, stream: IO[str]) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    rt = RichTable(title=table.title or None, header_style="bold", expand=False)
    for col in table.columns:
        rt.add_column(col, overflow="fold")
    for row in table.rows:
        rt.add_row(*(Text(c) for c in row))  # Text, never markup: cells may come from a server
    Console(file=stream, soft_wrap=False).print(rt)


def write_table(table: Table, fmt: str, stream: IO[str] | None = None) -> None:
    """``table`` (rich on a terminal, plain otherwise), ``csv`` or ``markdown``."""
    out = stream or sys.stdout
    if fmt == "csv":
        out.write(csv_text(table))
    elif fmt == "markdown":
        out.write(markdown(table))
    elif is_terminal(out):
        _rich(table, out)
    else:
        out.write(plain(table))


def write_json(document: BaseModel, stream: IO[str] | None = None) -> None:
    (stream or sys.stdout).write(document.model_dump_json(by_alias=True, indent=2) + "\n")
