"""The machine a benchmark ran on, read from the machine itself (never typed in)."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path


def _cpuinfo_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text(encoding="utf-8").splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def describe() -> dict[str, str]:
    """CPU model, cores, RAM, Python, OS, library versions, commit and load, as label -> value."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    dirty = " (with uncommitted changes)" if _git("status", "--porcelain", "--untracked-files=no") else ""
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "CPU": _cpuinfo_model(),
        "cores": f"{os.cpu_count()} logical, {usable} usable by this process",
        "RAM": f"{_mem_total_gib():.1f} GiB",
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "OS": f"{_os_name()}, kernel {platform.release()} ({platform.machine()})",
        "libraries": ", ".join(f"{name} {version(name)}" for name in ("textual", "pywinrm", "pydantic",
                                                                        "requests")),
        "commit": (_git("rev-parse", "--short", "HEAD") or "unknown") + dirty,
        "load average at start (1/5/15 min)": load,
    }
