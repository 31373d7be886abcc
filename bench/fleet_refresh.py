"""Benchmark 1: fleet refresh over WinRM (Basic/HTTP, concurrency 32), cold and warm, against baselines.

For each fleet size and latency, one `emconsole lab` process serves the fleet; this process runs
the engine (``FleetEngine`` + ``WinRMBackend``, as the headless commands do; the console's backend,
``WorkerProcessBackend``, which makes the same calls from a worker process, is timed on two fleets
after the matrix, its worker's CPU counted with the console's):

- cold: the first refresh (HTTP connections and shells are opened); warm: the next one (shells open);
- per refresh: wall time; WinRM requests per server (on the critical path, from the command log,
  plus the one Signal each command gets after its answer); this process's CPU per server; the lab
  process's CPU per request; how busy the lab and the console were during the wall time, and how
  many cores other processes on the machine took meanwhile;
- baselines in the same run: (a) the naive way — a new shell per call, servers one after another,
  as a Get-Mitigations.ps1 loop does (``naive_one``: Create, Command, Receive, Signal, Delete) —
  timed on a sample of servers and extrapolated to the fleet, as the output says; (b) the ideal
  ceil(N/32) x 2 x latency (two round trips per server on the critical path).

    python bench/fleet_refresh.py [--quick]     # the matrix (bench/refresh.py: one fleet)
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from emconsole.backends.base import Backend
from emconsole.backends.winrm.backend import WinRMBackend
from emconsole.backends.winrm.process import WorkerProcessBackend
from labproc import PASSWORD, Lab, process_cpu_s, running_lab, system_busy_s
from report import Section, fmt_ratio, ratio, run_standalone
from winrm.protocol import Protocol

from emconsole.audit import AuditLog
from emconsole.commandlog import CommandLog
from emconsole.config import Config
from emconsole.engine import FleetEngine
from emconsole.remote.scripts import build_status

CONCURRENCY = 32
FULL = [(n, lat) for n in (50, 200, 500) for lat in (0.0, 20.0, 50.0)]
QUICK = [(50, 0.0), (50, 50.0)]
#: Fleets refreshed again through the console's backend (WinRM calls in its worker process).
WORKER_FULL, WORKER_QUICK = [(200, 50.0), (500, 20.0)], [(50, 50.0)]
TARGET = (200, 50.0, 1.5)  # warm refresh of 200 servers at 50 ms within 1.5x the ideal


@dataclass
class Phase:
    """One refresh of the whole fleet, and what it cost on each side."""

    name: str
    wall_s: float
    failed: int
    requests: int
    critical_requests: int
    console_cpu_s: float
    console_cpu_in_wall_s: float
    lab_cpu_s: float
    lab_cpu_in_wall_s: float
    others_cores: float


@dataclass
class FleetRun:
    servers: int
    latency_ms: float
    concurrency: int
    cold: Phase
    warm: Phase
    naive_sample: int
    naive_sample_s: float
    lab_requests: int
    lab_wire_cpu_s: float
    expected_requests: int
    backend: str = "in-process"

    @property
    def ideal_s(self) -> float:
        return math.ceil(self.servers / self.concurrency) * 2 * self.latency_ms / 1000

    @property
    def naive_s(self) -> float:
        return self.naive_sample_s / self.naive_sample * self.servers


async def refresh_all(engine: FleetEngine) -> tuple[float, int]:
    """Seconds for one refresh of every server, and how many answered with a failure."""
    started = time.perf_counter()
    failed = 0
    async for view in engine.refresh():
        failed += view.failure is not None
    return time.perf_counter() - started, failed


def naive_one(config: Config, index: int) -> None:
    """What a script without reuse does: new session and shell, run, signal, delete, close.

    Plain pywinrm (its own ``Protocol``, none of the backend's envelope or request reuse): the
    baseline is what a loop over ``winrm.Session`` costs, not the backend with its reuse switched off.
    """
    server = config.servers[index]
    proto = Protocol(f"http://{server.host}:{server.port}/wsman", transport="basic",
                     username=server.username, password=PASSWORD)
    script = build_status(server.name, server.ems.value)
    shell = proto.open_shell(codepage=65001)
    command = proto.run_command(shell, "powershell.exe", script.encoded_arguments(), skip_cmd_shell=True)
    proto.get_command_output(shell, command)
    proto.cleanup_command(shell, command)
    proto.close_shell(shell)


def _console_cpu_s(engine: FleetEngine) -> float:
    """This process's CPU, and its WinRM worker process's if it has one (the console's backend)."""
    pid = getattr(engine.backend, "worker_pid", None)
    return time.process_time() + (process_cpu_s(pid) if pid else 0.0)


async def _phase(name: str, engine: FleetEngine, lab: Lab, log: CommandLog) -> Phase:
    """One refresh; CPU is read when the refresh ends and again once the Signals after it are done."""
    lab.settle()
    first = len(log.entries())
    sys0, lab0, me0, t0 = system_busy_s(), lab.cpu_s(), _console_cpu_s(engine), time.perf_counter()
    wall, failed = await refresh_all(engine)
    lab_end, me_end = lab.cpu_s(), _console_cpu_s(engine)
    await asyncio.to_thread(lab.settle)
    lab1, me1, sys1, t1 = lab.cpu_s(), _console_cpu_s(engine), system_busy_s(), time.perf_counter()
    entries = log.entries()[first:]
    critical = sum(e.round_trips for e in entries)
    others = max(0.0, (sys1 - sys0) - (lab1 - lab0) - (me1 - me0)) / (t1 - t0)
    return Phase(name, wall, failed, critical + len(entries), critical, me1 - me0, me_end - me0,
                 lab1 - lab0, lab_end - lab0, others)


async def run_fleet(servers: int, latency_ms: float, naive_sample: int, workdir: Path,
                    concurrency: int = CONCURRENCY, worker_process: bool = False) -> FleetRun:
    """One lab of ``servers`` at ``latency_ms``: a cold and a warm refresh, then the naive sample."""
    with running_lab(servers, latency_ms, workdir) as lab:
        config = lab.config.model_copy(update={"concurrency": concurrency, "call_timeout": 60.0})
        log = CommandLog(max_entries=servers * 4)
        backend: Backend
        if worker_process:
            backend = WorkerProcessBackend(lambda _s: PASSWORD, concurrency=concurrency)
            backend.start()  # as the console does when it builds its engine
        else:
            backend = WinRMBackend(lambda _s: PASSWORD)
        engine = FleetEngine(config, backend, audit=AuditLog(workdir / f"audit-{servers}.jsonl"),
                             command_log=log)
        cold = await _phase("cold", engine, lab, log)
        warm = await _phase("warm", engine, lab, log)
        await engine.aclose()
        lab.settle()
        sample = min(naive_sample, servers)
        started = time.perf_counter()
        for index in range(sample):
            naive_one(config, index)
        naive_s = time.perf_counter() - started
        counters = lab.stop()
    # Create per shell, Delete per shell at close, five per naive call.
    expected = cold.requests + warm.requests + servers + 5 * sample
    return FleetRun(servers, latency_ms, concurrency, cold, warm, sample, naive_s, counters.requests,
                    counters.wire_cpu_s, expected, "worker process" if worker_process else "in-process")


def _row(run: FleetRun, phase: Phase) -> list[str]:
    n = run.servers
    return [
        str(n), f"{run.latency_ms:g}", phase.name, f"{phase.wall_s:.2f}", f"{run.ideal_s:.2f}",
        fmt_ratio(ratio(phase.wall_s, run.ideal_s)), f"{cpu_floor_s(run, phase):.2f}", f"{run.naive_s:.1f}",
        fmt_ratio(ratio(run.naive_s, phase.wall_s)),
        f"{phase.critical_requests / n:.1f} + {(phase.requests - phase.critical_requests) / n:.1f}",
        f"{1000 * phase.console_cpu_s / n:.1f}", f"{1000 * phase.lab_cpu_s / max(1, phase.requests):.2f}",
        f"{100 * phase.lab_cpu_in_wall_s / phase.wall_s:.0f}%",
        f"{100 * phase.console_cpu_in_wall_s / phase.wall_s:.0f}%", f"{phase.others_cores:.2f}",
        str(phase.failed),
    ]


HEADER = ["servers", "latency ms", "refresh", "wall s", "ideal s", "wall/ideal", "CPU floor s",
          "naive s (extrapolated)", "naive/wall",
          "requests/server (critical + after)", "console CPU ms/server", "lab CPU ms/request",
          "lab busy", "console busy", "other processes (cores)", "failed"]


def cpu_floor_s(run: FleetRun, phase: Phase) -> float:
    """The shortest wall time the CPU work allowed: the lab's one thread, or both sides on the cores
    other processes left free (at least the ideal)."""
    free = max(0.25, _cores() - phase.others_cores)
    return max(run.ideal_s, phase.lab_cpu_s, (phase.lab_cpu_s + phase.console_cpu_s) / free)


def _verdict(run: FleetRun, phase: Phase) -> str:
    """Why a refresh took longer than the ideal, from the CPU it needed and the cores it had."""
    lab_busy = phase.lab_cpu_in_wall_s / phase.wall_s
    console_busy = phase.console_cpu_in_wall_s / phase.wall_s
    floor = cpu_floor_s(run, phase)
    free = max(0.25, _cores() - phase.others_cores)
    cpu = (f"lab {phase.lab_cpu_s:.2f} s ({1000 * phase.lab_cpu_s / max(1, phase.requests):.2f} ms x "
           f"{phase.requests} requests) + console {phase.console_cpu_s:.2f} s")
    if floor > run.ideal_s and phase.wall_s <= 1.3 * floor:
        if floor == phase.lab_cpu_s:
            why = (f"CPU-bound on the lab: its {phase.lab_cpu_s:.2f} s of CPU on one event-loop thread allow "
                   f"no less than {floor:.2f} s")
        else:
            why = (f"CPU-bound: {cpu} on the {free:.2f} cores other processes left free allow no less than "
                   f"{floor:.2f} s")
    else:
        why = (f"{phase.wall_s / floor:.1f}x its CPU floor of {floor:.2f} s ({cpu}; lab busy "
               f"{100 * lab_busy:.0f}%, console {100 * console_busy:.0f}%, other processes "
               f"{phase.others_cores:.2f} cores): time spent waiting — {_waiting(run, phase)}")
    return f"{run.servers} servers at {run.latency_ms:g} ms, {phase.name}: {why}."


def _waiting(run: FleetRun, phase: Phase) -> str:
    """What the wait above the CPU floor is made of, when latency makes the servers move in waves."""
    if run.latency_ms <= 0:
        return "the GIL, scheduling"
    waves = math.ceil(run.servers / run.concurrency)
    per_wave_ms = 1000 * phase.lab_cpu_s / waves
    per_server_ms = 1000 * phase.lab_cpu_s / run.servers
    return (f"latency and queueing in the lab, which serves one request at a time: the servers move in "
            f"waves of up to {run.concurrency} whose requests arrive together, so a wave's "
            f"{per_wave_ms:.0f} ms of lab CPU ({per_server_ms:.1f} ms per server) queue behind each other "
            f"on top of its {2 * run.latency_ms:g} ms of latency (ideal + lab CPU = "
            f"{run.ideal_s + phase.lab_cpu_s:.2f} s were the {waves} waves to stay in step)")


def _cores() -> int:
    import os

    return os.cpu_count() or 1


async def bench(quick: bool) -> Section:
    section = Section("1. Fleet refresh (Basic/HTTP, concurrency 32, lab in its own process)")
    print(f"== {section.title}", flush=True)
    runs: list[FleetRun] = []
    with tempfile.TemporaryDirectory(prefix="emconsole-bench-") as tmp:
        for servers, latency in QUICK if quick else FULL:
            run = await run_fleet(servers, latency, 3 if quick else 8, Path(tmp))
            runs.append(run)
            print(f"  {servers} servers at {latency:g} ms: cold {run.cold.wall_s:.2f} s, warm "
                  f"{run.warm.wall_s:.2f} s, ideal {run.ideal_s:.2f} s", flush=True)
    report_runs(section, runs)
    workers: list[FleetRun] = []
    with tempfile.TemporaryDirectory(prefix="emconsole-bench-") as tmp:
        for servers, latency in WORKER_QUICK if quick else WORKER_FULL:
            run = await run_fleet(servers, latency, 3 if quick else 8, Path(tmp), worker_process=True)
            workers.append(run)
            print(f"  {servers} servers at {latency:g} ms, the console's backend (worker process): cold "
                  f"{run.cold.wall_s:.2f} s, warm {run.warm.wall_s:.2f} s", flush=True)
    section.table(HEADER, [_row(run, phase) for run in workers for phase in (run.cold, run.warm)])
    section.note("The same refreshes through the console's backend (`WorkerProcessBackend`: each WinRM call "
                 "made by its worker process, the answer sent back over a socket pair). Console CPU here: "
                 "this process and the worker process together. The worker is started when the engine "
                 "is built, as the console does; the cold refresh includes what is left of its start "
                 "(a Python process importing pywinrm, ~0.5 s of CPU).")
    return section


def report_runs(section: Section, runs: list[FleetRun]) -> None:
    """The table, the notes, a verdict per refresh slower than 1.5x its ideal, and the target."""
    section.table(HEADER, [_row(run, phase) for run in runs for phase in (run.cold, run.warm)])
    samples = sorted({r.naive_sample for r in runs})
    section.note(f"naive: a new shell per call, servers one after another (Create, Command, Receive, "
                 f"Signal, Delete per server); timed on the first {'/'.join(map(str, samples))} servers of "
                 "each fleet and **extrapolated** linearly to the whole fleet (time per server x servers).")
    section.note("requests/server: on the critical path (from the command log), + the Signal sent after each "
                 "answer on a cleanup thread. Console CPU: this process, Signals included. Lab CPU: the "
                 "`emconsole lab` process (/proc), Signals included. Busy: CPU during the wall time / wall "
                 "time. Other processes: cores used by the rest of the machine meanwhile. CPU floor: the "
                 "shortest wall time the CPU work allowed — max(ideal, the lab's CPU on its one thread, "
                 "(lab + console CPU) / the cores other processes left free).")
    mismatched = [r for r in runs if r.lab_requests != r.expected_requests]
    section.note("Request count check: the lab's own counters (printed on exit) "
                 + ("match the console's count for every fleet." if not mismatched else
                    "differ: " + "; ".join(f"{r.servers}@{r.latency_ms:g} lab {r.lab_requests} vs "
                                           f"{r.expected_requests}" for r in mismatched)))
    for run in runs:
        for phase in (run.cold, run.warm):
            if (run.ideal_s and phase.wall_s > 1.5 * run.ideal_s) or not run.ideal_s:
                section.note(_verdict(run, phase))
    target = next((r for r in runs if (r.servers, r.latency_ms, r.concurrency) == (*TARGET[:2], 32)), None)
    if target is not None:
        got = target.warm.wall_s / target.ideal_s
        section.note(f"**Target** warm refresh of 200 servers at 50 ms within {TARGET[2]}x the ideal: "
                     f"{got:.2f}x — {'met' if got <= TARGET[2] else 'missed'}.")


def main() -> None:
    run_standalone(__doc__, lambda quick: asyncio.run(bench(quick)), "50 servers at 0 and 50 ms only")


if __name__ == "__main__":
    main()
