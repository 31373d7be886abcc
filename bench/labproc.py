"""`emconsole lab` in its own process for the benchmarks, and the CPU clocks they read.

Why a process of its own: the console's CPU (this process, or a console started in a pty) must be
measured apart from the lab's. The lab's CPU is read from ``/proc/<pid>/stat`` at any moment (all
its threads); its own counters (requests by action, wire CPU) come from the lines it prints when it
stops. ``system_busy_s`` lets a run say how much of the machine other processes took meanwhile.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from emconsole.config import Config, load_config
from emconsole.labconfig import LAB_PASSWORD_ENV

#: The lab's password (by environment, as `emconsole lab --write-config` expects) for every benchmark.
PASSWORD = "Bench-Passw0rd!"
_TICK = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and all its threads (10 ms resolution)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (the console's WinRM worker process)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text(encoding="ascii")
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def peak_rss_mb(pid: int) -> tuple[float, float]:
    """(VmHWM, VmRSS) of a running process in MiB: its peak resident set so far, and now."""
    values: dict[str, float] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                values[key] = int(rest.split()[0]) / 1024
    return values["VmHWM"], values["VmRSS"]


def system_busy_s() -> float:
    """CPU seconds every core of the machine spent busy since boot (all processes)."""
    with open("/proc/stat", encoding="ascii") as stat:
        parts = [int(v) for v in stat.readline().split()[1:]]
    idle = parts[3] + parts[4]  # idle + iowait
    return (sum(parts[:8]) - idle) / _TICK


@dataclass
class LabCounters:
    """What the lab printed when it stopped: requests by action and its wire thread's CPU."""

    requests: int = 0
    by_action: dict[str, int] = field(default_factory=dict)
    wire_cpu_s: float = 0.0
    process_cpu_s: float = 0.0
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> LabCounters:
        out = cls(text=text.strip())
        head = re.search(r"lab counters: (\d+) requests \(([^)]*)\)", text)
        if head:
            out.requests = int(head.group(1))
            out.by_action = {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", head.group(2))}
        cpu = re.search(r"CPU wire ([\d.]+) s .*process ([\d.]+) s", text)
        if cpu:
            out.wire_cpu_s, out.process_cpu_s = float(cpu.group(1)), float(cpu.group(2))
        return out


@dataclass
class Lab:
    """A started lab: its process, the config it wrote, and its CPU clock."""

    proc: subprocess.Popen[str]
    servers: int
    latency_ms: float
    config_path: Path
    config: Config
    ready_line: str
    counters: LabCounters | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_s(self) -> float:
        return process_cpu_s(self.proc.pid)

    def settle(self, quiet_s: float = 0.3, timeout_s: float = 15.0) -> None:
        """Wait until the lab's CPU stops rising (work sent off the critical path is done)."""
        deadline = time.monotonic() + timeout_s
        last = self.cpu_s()
        while time.monotonic() < deadline:
            time.sleep(quiet_s)
            now = self.cpu_s()
            if now - last < 1.5 / _TICK:
                return
            last = now

    def stop(self) -> LabCounters:
        """SIGTERM, then the counters the lab prints on its way out."""
        if self.counters is None:
            self.proc.send_signal(signal.SIGTERM)
            out, _ = self.proc.communicate(timeout=60)
            self.counters = LabCounters.parse(out)
        return self.counters


def lab_env() -> dict[str, str]:
    """The environment for the lab and for any console started on its config (password by env)."""
    return {**os.environ, LAB_PASSWORD_ENV: PASSWORD}


def start_lab(servers: int, latency_ms: float, workdir: Path, extra: Sequence[str] = ()) -> Lab:
    """`emconsole lab` with a written config (the Exchange shell loaded as a snap-in), once ready."""
    config_path = workdir / f"lab-{servers}-{latency_ms:g}.toml"
    argv = [sys.executable, "-m", "emconsole", "lab", "--servers", str(servers), "--port", "0",
            "--latency-ms", str(latency_ms), "--ems", "snapin", "--write-config", str(config_path), *extra]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=lab_env())
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("lab ready:"):
            break
    else:
        raise SystemExit(f"the lab did not start (exit {proc.wait()}): {' '.join(argv)}")
    # The audit log of a console started on this config stays in the work folder.
    text = config_path.read_text(encoding="utf-8")
    config_path.write_text(f"audit_path = {str(workdir / 'audit.jsonl')!r}\n{text}", encoding="utf-8")
    os.environ.setdefault(LAB_PASSWORD_ENV, PASSWORD)  # the config's password_from, for this process
    config, _location = load_config(config_path)
    return Lab(proc, servers, latency_ms, config_path, config, line.strip())


@contextmanager
def running_lab(servers: int, latency_ms: float, workdir: Path, extra: Sequence[str] = ()) -> Iterator[Lab]:
    """A lab for the length of a ``with`` block; stopped (and its counters read) on the way out."""
    lab = start_lab(servers, latency_ms, workdir, extra)
    try:
        yield lab
    finally:
        if lab.counters is None:
            try:
                lab.stop()
            except subprocess.TimeoutExpired:
                lab.proc.kill()
                lab.proc.wait()
