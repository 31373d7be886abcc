"""One benchmark's findings, printed as they come and written into docs/performance.md.

The measured part of docs/performance.md lies between two marker lines and is replaced by every
full run; the text around it (what the numbers mean, causes, before/after) is written by hand.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BEGIN = "<!-- bench:begin (written by python bench/run_all.py; edits here are overwritten) -->"
END = "<!-- bench:end -->"


@dataclass
class Section:
    """A titled part of the report: tables and notes, kept as Markdown and printed as text."""

    title: str
    blocks: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.blocks.append(text)
        print(f"  {text}", flush=True)

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        self.blocks.append("\n".join(lines))
        widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
        for row in (header, *rows):
            print("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)), flush=True)

    def markdown(self) -> str:
        return f"### {self.title}\n\n" + "\n\n".join(self.blocks) + "\n"


def fmt_ratio(value: float) -> str:
    return "—" if math.isnan(value) or math.isinf(value) else f"{value:.2f}×"


def ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


def pct(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of the values, by linear interpolation (nan for none)."""
    if not values:
        return math.nan
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, round(q * 100) - 1))]


def write_performance(path: Path, machine: dict[str, str], command: str, sections: Sequence[Section]) -> None:
    """Replace the measured block of ``path`` (created with a heading if missing)."""
    lines = [BEGIN, "", f"Produced by `{command}`.", "", "| machine | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in machine.items()]
    block = "\n".join(lines) + "\n\n" + "\n".join(s.markdown() for s in sections) + "\n" + END
    text = path.read_text(encoding="utf-8") if path.exists() else "# Performance\n\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def run_standalone(doc: str | None, bench: Callable[[bool], object], quick_help: str) -> None:
    """A benchmark module run on its own: its docstring as help, ``--quick`` meaning ``quick_help``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    bench(parser.parse_args().quick)
