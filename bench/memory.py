"""Benchmark 4: the console's memory for 50 and 500 servers, and how it grows.

The console (``emconsole --config LAB.toml``) runs in a pseudo-terminal as an operator starts it,
on a lab in its own process (latency 0). Its resident set, and its WinRM worker process's (the
console's child that holds pywinrm), is read from ``/proc/<pid>/status``
(VmRSS now, VmHWM the peak so far) after the first refresh, after each of five more (``r``), and with
the mitigation list open (``I``, one row per server and mitigation); the last VmHWM, read just
before ctrl+q, is its peak over the run. Baselines in the same run: the peak RSS (VmHWM, printed by
the program itself at its end) of ``python -c "pass"``, of ``python -c "import textual"`` and of a
minimal Textual app. (Not ``ru_maxrss``: on Linux it keeps the pre-exec peak of the forking parent.)

    python bench/memory.py [--quick]
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from labproc import Lab, child_pids, lab_env, peak_rss_mb, running_lab
from ptyterm import PtyProgram
from report import Section, run_standalone
from startup import HELLO_APP

REFRESHING = re.compile("⟳".encode())
#: Refreshes in all: the command log keeps the last 2,000 scripts sent, 4 refreshes of 500 servers.
REFRESHES, REFRESHES_QUICK = 6, 3


@dataclass
class ConsoleMemory:
    servers: int
    stages: dict[str, tuple[float, float]] = field(default_factory=dict)  # stage -> (VmHWM, VmRSS) MiB
    worker: dict[str, tuple[float, float]] = field(default_factory=dict)  # the same, its WinRM worker
    mitigation_rows: int = 0
    peak_mb: float = 0.0


def console_memory(lab: Lab, refreshes: int, timeout_s: float = 180.0) -> ConsoleMemory:
    """Start the console on the lab, refresh it ``refreshes`` times in all, open the mitigation list;
    RSS at each step."""
    out = ConsoleMemory(lab.servers)
    done = re.compile(rb"refresh %gs" % lab.config.refresh_interval)
    term = PtyProgram([sys.executable, "-m", "emconsole", "--config", str(lab.config_path)], env=lab_env())
    try:
        found = term.wait_for(re.compile(rb"%d servers" % lab.servers), timeout_s)
        found = found and term.wait_for(done, timeout_s, found[1])
        if not found:
            raise SystemExit(f"the console on {lab.servers} servers did not finish its first refresh")
        _measure(out, "after refresh 1", term.pid)
        for nth in range(2, refreshes + 1):
            term.send(b"r")
            found = term.wait_for(REFRESHING, timeout_s, found[1])
            found = found and term.wait_for(done, timeout_s, found[1])
            if not found:
                raise SystemExit(f"the console on {lab.servers} servers did not finish refresh {nth}")
            _measure(out, f"after refresh {nth}", term.pid)
        term.send(b"I")
        rows = term.wait_for(re.compile(rb"Mitigations +(\d+) rows"), timeout_s, found[1])
        if rows is None:
            raise SystemExit("the mitigation list did not open")
        match = re.compile(rb"Mitigations +(\d+) rows").search(term.text, found[1])
        out.mitigation_rows = int(match.group(1)) if match else 0
        _measure(out, "mitigation list open", term.pid)
    finally:
        term.quit()
    out.peak_mb = out.stages["mitigation list open"][0]
    return out


def _measure(out: ConsoleMemory, stage: str, pid: int) -> None:
    out.stages[stage] = peak_rss_mb(pid)
    workers = child_pids(pid)
    out.worker[stage] = peak_rss_mb(workers[0]) if len(workers) == 1 else (0.0, 0.0)


#: Appended to a baseline program: print its own peak RSS (VmHWM, kB) as it ends, to stderr.
PRINT_PEAK = """
import sys as _s
_s.stderr.write(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")))
"""


def peak_of(code: str) -> float:
    """Peak RSS (MiB) of ``python -c CODE`` run to its end, as the program itself reads it."""
    done = subprocess.run([sys.executable, "-c", code + PRINT_PEAK], capture_output=True, text=True,
                          check=True)
    return _peak_in(done.stderr.encode())


def _peak_in(text: bytes) -> float:
    match = re.search(rb"VmHWM:\s*(\d+) kB", text)
    if match is None:
        raise SystemExit("a baseline program did not print its peak RSS")
    return int(match.group(1)) / 1024


def hello_peak() -> float:
    """The minimal Textual app in the pty: first frame, ctrl+q, then its peak RSS on the terminal."""
    term = PtyProgram([sys.executable, "-c", HELLO_APP + PRINT_PEAK])
    try:
        term.wait_for(re.compile(rb"hello from textual"), 60.0)
    finally:
        term.quit()
    return _peak_in(bytes(term.text))


def bench(quick: bool) -> Section:
    sizes = (25, 50) if quick else (50, 500)
    section = Section(f"4. Memory (console process and its WinRM worker, {sizes[0]} and {sizes[1]} servers)")
    print(f"== {section.title}", flush=True)
    baselines = {
        'baseline: `python -c "pass"`': peak_of("pass"),
        'baseline: `python -c "import textual"`': peak_of("import textual"),
        "baseline: a minimal Textual app (one Static) in the pty": hello_peak(),
    }
    results: list[ConsoleMemory] = []
    with tempfile.TemporaryDirectory(prefix="emconsole-bench-") as tmp:
        for servers in sizes:
            with running_lab(servers, 0, Path(tmp)) as lab:
                results.append(console_memory(lab, REFRESHES_QUICK if quick else REFRESHES))
            print(f"  {servers} servers: peak {results[-1].peak_mb:.1f} MiB", flush=True)
    small, large = results
    rows = [[name, f"{mb:.1f}", "", ""] for name, mb in baselines.items()]
    for stage in small.stages:
        a, b = small.stages[stage][1], large.stages[stage][1]
        rows.append([f"console RSS {stage}", f"{a:.1f}", f"{b:.1f}",
                     f"{(b - a) * 1024 / (large.servers - small.servers):.1f}"])
    rows.append(["console peak RSS over the run (VmHWM)", f"{small.peak_mb:.1f}", f"{large.peak_mb:.1f}",
                 f"{(large.peak_mb - small.peak_mb) * 1024 / (large.servers - small.servers):.1f}"])
    for stage in ("after refresh 1", f"after refresh {len(small.worker) - 1}"):
        a, b = small.worker[stage][1], large.worker[stage][1]
        rows.append([f"its WinRM worker process RSS {stage}", f"{a:.1f}", f"{b:.1f}",
                     f"{(b - a) * 1024 / (large.servers - small.servers):.1f}"])
    both = [r.peak_mb + r.worker["mitigation list open"][0] for r in results]
    rows.append(["console + worker peak RSS (VmHWM)", f"{both[0]:.1f}", f"{both[1]:.1f}",
                 f"{(both[1] - both[0]) * 1024 / (large.servers - small.servers):.1f}"])
    section.table(["what", f"{small.servers} servers MiB", f"{large.servers} servers MiB",
                   "growth KiB per server"], rows)
    textual_app = baselines["baseline: a minimal Textual app (one Static) in the pty"]
    changes = []
    for r in results:
        rss = [r.stages[s][1] for s in r.stages if s.startswith("after refresh")]
        changes.append(f"{r.servers} servers " + " ".join(f"{b - a:+.1f}" for a, b in pairwise(rss)) + " MiB")
    section.note(f"Over a minimal Textual app ({textual_app:.1f} MiB) the console holds "
                 f"{small.peak_mb - textual_app:.1f} MiB at {small.servers} servers and "
                 f"{large.peak_mb - textual_app:.1f} MiB at {large.servers}. RSS change from one refresh to "
                 f"the next: {'; '.join(changes)}. Mitigation list rows: {small.mitigation_rows} / "
                 f"{large.mitigation_rows}.")
    return section


def main() -> None:
    run_standalone(__doc__, bench, "25 and 50 servers instead of 50 and 500")


if __name__ == "__main__":
    main()
