"""The benchmarks' plumbing (no timings): the lab's exit counters are read as the lab prints them,
and a run replaces only the measured block of docs/performance.md."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from emconsole.backends.lab.wire.counters import Counters, format_counters

# Last on the path: the bench modules never shadow anything else the suite imports.
sys.path.append(str(Path(__file__).resolve().parent.parent / "bench"))

from labproc import LabCounters
from report import BEGIN, END, Section, write_performance


def test_lab_counters_are_read_from_the_lines_the_lab_prints() -> None:
    counters = Counters(requests=2200, by_action=Counter({"Command": 600, "Create": 200, "Delete": 200,
                                                           "Receive": 600, "Signal": 600}))
    snapshot = counters.snapshot()
    snapshot["loop_cpu_s"], snapshot["process_cpu_s"] = 5.95, 7.09
    parsed = LabCounters.parse("lab ready: ...\n" + format_counters(snapshot) + "\n")
    assert parsed.requests == 2200
    assert parsed.by_action == {"Command": 600, "Create": 200, "Delete": 200, "Receive": 600, "Signal": 600}
    assert (parsed.wire_cpu_s, parsed.process_cpu_s) == (5.95, 7.09)


def test_a_run_replaces_only_the_measured_block(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text(f"# Performance\n\nby hand before\n\n{BEGIN}\nold numbers\n{END}\n\nby hand after\n",
                   encoding="utf-8")
    section = Section("1. Something")
    section.table(["what", "s"], [["refresh", "1.23"]])
    section.note("a note")
    write_performance(doc, {"CPU": "test CPU"}, "python bench/run_all.py", [section])
    text = doc.read_text(encoding="utf-8")
    assert "by hand before" in text and "by hand after" in text and "old numbers" not in text
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    block = text.split(BEGIN)[1].split(END)[0]
    assert "| CPU | test CPU |" in block and "### 1. Something" in block and "| refresh | 1.23 |" in block
