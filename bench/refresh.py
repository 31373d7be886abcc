"""Refresh benchmark: the engine against `emconsole lab` running in its own process.

    python bench/refresh.py [--servers 200] [--latency-ms 50] [--concurrency 32] [--naive-subset 10]

Prints, from one run: cold and warm refresh wall time, WinRM round trips per server (command log),
the console's CPU per server (this process only: the lab is another process), the naive way (a new
shell per call, servers one after another — measured on a subset and extrapolated, as printed), and
the ideal ceil(servers/concurrency) x 2 x latency. Basic auth over HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from emconsole.backends.winrm.backend import WinRMBackend
from emconsole.backends.winrm.session import ConnectionSettings, make_protocol

from emconsole.audit import AuditLog
from emconsole.commandlog import CommandLog
from emconsole.config import Config, parse_config
from emconsole.engine import FleetEngine
from emconsole.labconfig import LAB_PASSWORD_ENV
from emconsole.remote.scripts import build_status

PASSWORD = "Bench-Passw0rd!"


def start_lab(servers: int, latency_ms: float, workdir: Path) -> tuple[subprocess.Popen[str], Config]:
    """`emconsole lab` in a subprocess; returns once its 'lab ready:' line is printed."""
    config_path = workdir / "lab.toml"
    env = {**os.environ, LAB_PASSWORD_ENV: PASSWORD}
    proc = subprocess.Popen(
        [sys.executable, "-m", "emconsole", "lab", "--servers", str(servers), "--port", "0",
         "--latency-ms", str(latency_ms), "--write-config", str(config_path)],
        stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("lab ready:"):
            print(line.strip())
            break
    else:
        raise SystemExit(f"the lab did not start (exit {proc.wait()})")
    text = config_path.read_text(encoding="utf-8").replace('"remoteexchange"', '"snapin"')
    return proc, parse_config(text, str(config_path))


async def refresh_all(engine: FleetEngine) -> tuple[float, int]:
    started = time.perf_counter()
    failed = 0
    async for view in engine.refresh():
        failed += view.failure is not None
    return time.perf_counter() - started, failed


def naive_one(config: Config, index: int) -> None:
    """What a script without reuse does: new session and shell, run, signal, delete, close."""
    server = config.servers[index]
    proto = make_protocol(ConnectionSettings(name=server.name, host=server.host, port=server.port,
                                             username=server.username, password=PASSWORD))
    script = build_status(server.name, server.ems.value)
    shell = proto.open_shell(codepage=65001)
    command = proto.run_command(shell, "powershell.exe", script.encoded_arguments(), skip_cmd_shell=True)
    proto.get_command_output(shell, command)
    proto.cleanup_command(shell, command)
    proto.close_shell(shell)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--naive-subset", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="emconsole-bench-") as tmp:
        lab, lab_config = start_lab(args.servers, args.latency_ms, Path(tmp))
        try:
            config = lab_config.model_copy(update={"concurrency": args.concurrency, "call_timeout": 30.0})
            log = CommandLog(max_entries=args.servers * 4)
            audit = AuditLog(Path(tmp) / "a.jsonl")
            engine = FleetEngine(config, WinRMBackend(lambda _s: PASSWORD), audit=audit, command_log=log)
            cpu0 = time.process_time()
            cold, cold_failed = await refresh_all(engine)
            cpu1 = time.process_time()
            n_cold = len(log.entries())
            warm, warm_failed = await refresh_all(engine)
            cpu2 = time.process_time()
            entries = log.entries()
            rt_cold = sum(e.round_trips for e in entries[:n_cold]) / max(1, n_cold)
            rt_warm = sum(e.round_trips for e in entries[n_cold:]) / max(1, len(entries) - n_cold)
            await engine.aclose()
            subset = min(args.naive_subset, args.servers)
            started = time.perf_counter()
            for i in range(subset):
                naive_one(config, i)
            naive_subset = time.perf_counter() - started
        finally:
            lab.terminate()
            lab.wait(30)
    n = args.servers
    naive = naive_subset / subset * n
    ideal = math.ceil(n / args.concurrency) * 2 * args.latency_ms / 1000
    print(f"servers {n}, latency {args.latency_ms:.0f} ms/request, "
          f"concurrency {args.concurrency}, Basic/HTTP")
    if warm_failed:
        print(f"note: {warm_failed} servers answered with a failure (e.g. the lab's host could not run "
              "the status script); the wire cost is the same")
    print(f"cold refresh   {cold:6.2f} s  ({rt_cold:.1f} round trips/server on the critical path, "
          f"{cold_failed} failed)")
    print(f"warm refresh   {warm:6.2f} s  ({rt_warm:.1f} round trips/server on the critical path, "
          f"{warm_failed} failed)")
    print(f"console CPU    cold {1000 * (cpu1 - cpu0) / n:.1f} ms/server, "
          f"warm {1000 * (cpu2 - cpu1) / n:.1f} ms/server")
    print(f"naive          {naive:6.2f} s  (measured {naive_subset:.2f} s on {subset} servers one after "
          f"another, extrapolated x{n / subset:.0f})")
    print(f"ideal          {ideal:6.2f} s  (ceil({n}/{args.concurrency}) x 2 x {args.latency_ms:.0f} ms)")
    print(f"warm / ideal   {warm / ideal:6.2f}x   naive / warm {naive / warm:6.1f}x   "
          f"cold / ideal {cold / ideal:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
