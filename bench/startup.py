"""Benchmark 2: startup on a 50-server lab, against starting Python and importing Textual.

- the console: ``emconsole --config LAB.toml`` in a 120x40 pseudo-terminal, as an operator starts
  it; seconds from the spawn to the first frame (the top bar reaches the terminal), to the servers
  listed, and to the end of the first refresh of all 50 (then ctrl+q);
- headless: ``emconsole --config LAB.toml status --format json`` to its exit (the JSON is checked);
- baselines in the same run: ``python -c "pass"`` and ``python -c "import textual"`` to their exit
  (the floor any Python program, and any Textual program, starts from), and the first frame of a
  minimal Textual app (one Static) in the same pseudo-terminal.

The lab (`emconsole lab --write-config`, latency 0) runs in its own process throughout.

    python bench/startup.py [--quick]
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labproc import Lab, lab_env, running_lab
from ptyterm import PtyProgram
from ptyterm import marks as pty_marks
from report import Section, fmt_ratio, run_standalone

SERVERS = 50
#: The smallest Textual app that draws a frame: the floor for any Textual program's first frame.
HELLO_APP = """
from textual.app import App
from textual.widgets import Static

class Hello(App):
    BINDINGS = [("ctrl+q", "quit")]

    def compose(self):
        yield Static("hello from textual")

Hello().run()
"""


def hello_first_frame() -> float:
    """Seconds from the spawn of ``HELLO_APP`` in a pty to its text on the terminal."""
    term = PtyProgram([sys.executable, "-c", HELLO_APP])
    try:
        found = term.wait_for(re.compile(rb"hello from textual"), 60.0)
    finally:
        term.quit()
    if found is None:
        raise SystemExit("the minimal Textual app drew no frame")
    return found[0]


def console_marks(lab: Lab, timeout_s: float = 120.0) -> dict[str, float]:
    """Seconds from the spawn of the console on the lab's config to each mark (missing: not reached)."""
    marks = {
        "first frame": re.compile(rb"emconsole"),
        "servers listed": re.compile(rb"%d servers" % lab.servers),
        "first refresh done": re.compile(rb"refresh %gs" % lab.config.refresh_interval),
    }
    argv = [sys.executable, "-m", "emconsole", "--config", str(lab.config_path)]
    return pty_marks(argv, marks, timeout_s, env=lab_env())


def timed_exit(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    """Seconds from spawn to exit, and the program's stdout."""
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    took = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return took, done.stdout


def status_json(lab: Lab) -> float:
    """``emconsole status --format json`` on the lab; checks every server is in the document."""
    took, out = timed_exit([sys.executable, "-m", "emconsole", "--config", str(lab.config_path), "status",
                            "--format", "json"], env=lab_env())
    servers = json.loads(out)["servers"]
    if len(servers) != lab.servers:
        raise SystemExit(f"status --format json listed {len(servers)} of {lab.servers} servers")
    return took


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}" if values else "not reached"


def bench(quick: bool) -> Section:
    section = Section(f"2. Startup ({SERVERS}-server lab, latency 0)")
    print(f"== {section.title}", flush=True)
    runs = 1 if quick else 3
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="emconsole-bench-") as tmp, \
            running_lab(SERVERS, 0, Path(tmp)) as lab:
        # Alternate the programs so that a busy moment of the machine does not land on one of them.
        results: dict[str, list[float]] = {}
        for _ in range(runs):
            results.setdefault("python -c pass", []).append(timed_exit([py, "-c", "pass"])[0])
            results.setdefault("python -c 'import textual'", []).append(
                timed_exit([py, "-c", "import textual"])[0])
            results.setdefault("hello app", []).append(hello_first_frame())
            results.setdefault("status --format json", []).append(status_json(lab))
            for name, seconds in console_marks(lab).items():
                results.setdefault(name, []).append(seconds)
            print(f"  run {_ + 1}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in results.items()), flush=True)
    base = statistics.median(results["python -c pass"])
    textual = statistics.median(results["python -c 'import textual'"])
    rows = []
    for name, label in [
        ("python -c pass", "baseline: `python -c \"pass\"` (exit)"),
        ("python -c 'import textual'", "baseline: `python -c \"import textual\"` (exit)"),
        ("hello app", "baseline: a minimal Textual app (one Static): first frame"),
        ("first frame", "console: first frame on the terminal"),
        ("servers listed", f"console: {SERVERS} servers listed"),
        ("first refresh done", f"console: first refresh of {SERVERS} servers done"),
        ("quit", "console: ctrl+q to exit"),
        ("status --format json", "`emconsole status --format json` (exit)"),
    ]:
        values = results.get(name, [])
        median = statistics.median(values) if values else float("nan")
        rows.append([label, _median(values), " ".join(f"{v:.2f}" for v in values),
                     fmt_ratio(median / textual), fmt_ratio(median / base)])
    section.table(["what", "median s", f"runs ({runs})", "vs import textual", "vs python -c pass"], rows)
    if "first frame" in results:
        frame = statistics.median(results["first frame"])
        hello = statistics.median(results["hello app"])
        section.note(f"First frame {frame:.2f} s = {frame / hello:.2f}x the first frame of a minimal Textual "
                     f"app ({hello:.2f} s) and {frame / textual:.2f}x starting Python and importing Textual "
                     f"({textual:.2f} s); the engine, the WinRM backend and the servers come after it.")
    return section


def main() -> None:
    run_standalone(__doc__, bench, "one run instead of three")


if __name__ == "__main__":
    main()
