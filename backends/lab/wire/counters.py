"""What the lab did, for tests and benchmarks: requests by action, shells, commands, bytes, CPU.

Written only from the wire's event-loop thread (plain ints and Counters); read from any thread.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Counters:
    """Totals over every server of one lab."""

    requests: int = 0
    by_action: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    content_types: Counter[str] = field(default_factory=Counter)
    plaintext_soap_bodies: int = 0
    encrypted_bodies: int = 0
    auth_failures: int = 0
    host_errors: int = 0
    open_shells: int = 0
    running_commands: int = 0
    connections_open: int = 0
    connections_total: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    loop_thread: threading.Thread | None = None

    def loop_cpu_s(self) -> float:
        """CPU seconds spent by the wire's event-loop thread (process CPU where the OS cannot say)."""
        thread = self.loop_thread
        getter = getattr(time, "pthread_getcpuclockid", None)
        if thread is None or thread.ident is None or getter is None or not thread.is_alive():
            return time.process_time()
        try:
            return time.clock_gettime(getter(thread.ident))
        except OSError:
            return time.process_time()

    def snapshot(self) -> dict[str, Any]:
        """A copy of every counter plus threads and CPU, safe to keep and compare."""
        return {
            "requests": self.requests,
            "by_action": dict(self.by_action),
            "by_status": dict(self.by_status),
            "faults": dict(self.faults),
            "content_types": dict(self.content_types),
            "plaintext_soap_bodies": self.plaintext_soap_bodies,
            "encrypted_bodies": self.encrypted_bodies,
            "auth_failures": self.auth_failures,
            "host_errors": self.host_errors,
            "open_shells": self.open_shells,
            "running_commands": self.running_commands,
            "connections_open": self.connections_open,
            "connections_total": self.connections_total,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "threads": threading.active_count(),
            "loop_cpu_s": round(self.loop_cpu_s(), 3),
            "process_cpu_s": round(time.process_time(), 3),
        }


def format_counters(snap: dict[str, Any]) -> str:
    """A few human lines for the end of `emconsole lab`."""
    actions = ", ".join(f"{k} {v}" for k, v in sorted(snap["by_action"].items())) or "none"
    per_req = snap["loop_cpu_s"] / snap["requests"] * 1000 if snap["requests"] else 0.0
    faults = ", ".join(f"{k} {v}" for k, v in sorted(snap["faults"].items())) or "none"
    return "\n".join(
        [
            f"lab counters: {snap['requests']} requests ({actions})",
            f"  shells open {snap['open_shells']}, commands running {snap['running_commands']}, "
            f"connections {snap['connections_total']} ({snap['connections_open']} open), "
            f"auth failures {snap['auth_failures']}, faults injected: {faults}",
            f"  bytes in {snap['bytes_in']}, out {snap['bytes_out']}; threads {snap['threads']}; "
            f"CPU wire {snap['loop_cpu_s']:.2f} s ({per_req:.2f} ms/request), "
            f"process {snap['process_cpu_s']:.2f} s",
        ]
    )
