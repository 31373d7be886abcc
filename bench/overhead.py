"""Benchmark 5: the CPU emconsole spends per server per refresh, by part, against the naive client.

One lab (latency 0, in its own process); in this process, per warm refresh (shells open), CPU time
read from each thread's own clock:

- engine alone (``FleetEngine`` + ``WinRMBackend``, as the headless commands use it): the engine's
  pool threads ("WinRM threads": pywinrm's HTTP, XML and base64, then parsing the answer and making
  the model), the cleanup threads (the Signal after each answer) and the event loop (script text,
  engine bookkeeping);
- the console (the real app under Pilot, fleet screen showing): its WinRM calls run in a worker
  process (``WorkerProcessBackend``; that process's CPU from /proc, Signals included), its engine's
  pool threads wait for the answers and parse them, and the event loop also updates the rows, the
  top bar and draws the frames — the UI's share is the event loop's difference;
- parse (``documents.parse_document``) and model (``results.server_state``) timed again on the
  very documents the lab sent in that refresh;
- the baseline: the naive client (``fleet_refresh.naive_one``: pywinrm, a new shell per call, one server
  after another), its CPU per server in this process.

    python bench/overhead.py [--quick]
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from consoleapp import running_console, wait_refreshed, worker_cpu_s
from emconsole.backends.winrm.backend import WinRMBackend
from fleet_refresh import naive_one, refresh_all
from labproc import PASSWORD, Lab, running_lab
from report import Section, fmt_ratio, run_standalone

from emconsole.audit import AuditLog
from emconsole.commandlog import CommandLog
from emconsole.config import Config
from emconsole.engine import FleetEngine
from emconsole.remote import documents, results

GROUPS = {"emconsole-winrm": "WinRM threads", "winrm-cleanup": "cleanup (Signal)"}
PARTS = ["WinRM threads", "cleanup (Signal)", "worker process", "event loop", "other threads"]


def thread_cpu() -> dict[str, float]:
    """CPU seconds so far of this process's live threads, by part."""
    out: dict[str, float] = defaultdict(float)
    main = threading.main_thread()
    for thread in threading.enumerate():
        if thread.ident is None:
            continue
        try:
            cpu = time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        except (OSError, ProcessLookupError):
            continue
        prefix = (thread.name or "").split("_")[0]
        out["event loop" if thread is main else GROUPS.get(prefix, "other threads")] += cpu
    return out


def cpu_since(before: dict[str, float]) -> dict[str, float]:
    now = thread_cpu()
    return {part: now.get(part, 0.0) - before.get(part, 0.0) for part in PARTS}


async def engine_alone(config: Config, lab: Lab, workdir: Path) -> dict[str, float]:
    """Warm refresh by the engine without a UI; CPU by part (the Signals after it included)."""
    engine = FleetEngine(config, WinRMBackend(lambda _s: PASSWORD), audit=AuditLog(workdir / "e.jsonl"),
                         command_log=CommandLog(max_entries=len(config.servers) * 4))
    await refresh_all(engine)
    await asyncio.to_thread(lab.settle)
    before = thread_cpu()
    await refresh_all(engine)
    await asyncio.to_thread(lab.settle)
    spent = cpu_since(before)
    await engine.aclose()
    return spent


async def console(config: Config, lab: Lab) -> tuple[dict[str, float], list[str]]:
    """Warm refresh by the console (fleet screen); CPU by part, and the documents the lab sent."""
    async with running_console(config) as (app, _pilot):
        await wait_refreshed(app)
        await asyncio.to_thread(lab.settle)
        assert app.engine is not None
        log = app.engine.command_log
        first = len(log.entries())
        before, worker = thread_cpu(), worker_cpu_s(app)
        app.refresh_fleet()
        await wait_refreshed(app)
        await asyncio.sleep(0.2)  # the last rows drawn
        await asyncio.to_thread(lab.settle)
        spent = cpu_since(before)
        spent["worker process"] = worker_cpu_s(app) - worker
        outputs = [e.raw_output for e in log.entries()[first:]]
    return spent, outputs


def parse_and_model(config: Config, outputs: list[str]) -> tuple[float, float]:
    """CPU seconds per document of parsing it and of making the server's state from it (medians)."""
    catalogue = config.knowledge().catalogue
    parse, model = [], []
    for _ in range(3):
        for server, out in zip(config.servers, outputs, strict=False):
            started = time.thread_time()
            doc = documents.parse_document(out, "status")
            parsed = time.thread_time()
            assert isinstance(doc, documents.StatusDocument)
            results.server_state(doc, server.name, catalogue)
            parse.append(parsed - started)
            model.append(time.thread_time() - parsed)
    return statistics.median(parse), statistics.median(model)


def naive_cpu(config: Config, sample: int) -> float:
    """CPU seconds per server of the naive client in this process (its one thread)."""
    started = time.thread_time()
    for index in range(sample):
        naive_one(config, index)
    return (time.thread_time() - started) / sample


def bench(quick: bool) -> Section:
    servers = 50 if quick else 200
    section = Section(f"5. Per-call overhead (CPU per server per warm refresh, {servers}-server lab, "
                      "latency 0)")
    print(f"== {section.title}", flush=True)
    with tempfile.TemporaryDirectory(prefix="emconsole-bench-") as tmp, \
            running_lab(servers, 0.0, Path(tmp)) as lab:
        config = lab.config.model_copy(update={"concurrency": 32, "call_timeout": 60.0})
        alone = asyncio.run(engine_alone(config, lab, Path(tmp)))
        with_ui, outputs = asyncio.run(console(config, lab))
        lab.settle()
        naive = naive_cpu(config, 5 if quick else 20)
    parse, model = parse_and_model(config, outputs)
    ms = 1000 / servers
    rows = []
    for name, spent in (("engine alone (headless commands)", alone),
                        ("console (engine + fleet screen)", with_ui)):
        total = sum(spent.values())
        rows.append([name, *(f"{spent[p] * ms:.2f}" for p in PARTS), f"{total * ms:.2f}",
                     fmt_ratio(total / servers / naive)])
    rows.append(["baseline: naive client (new shell per call)", "", "", "", "", "", f"{naive * 1000:.2f}",
                 "1.00×"])
    section.table(["ms CPU per server", *PARTS, "total", "vs naive"], rows)
    ui = (with_ui["event loop"] - alone["event loop"]) * ms
    section.note(f"Of the WinRM threads' share: parse {parse * 1000:.2f} ms and model {model * 1000:.2f} ms "
                 f"per server (timed again on the {len(outputs)} documents of the console's refresh); the UI "
                 f"(rows, top bar, frames) adds {ui:.2f} ms per server over the engine alone.")
    return section


def main() -> None:
    run_standalone(__doc__, bench, "50 servers instead of 200")


if __name__ == "__main__":
    main()
