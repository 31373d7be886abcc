"""Refresh benchmark for one fleet: the engine against `emconsole lab` running in its own process.

    python bench/refresh.py [--servers 200] [--latency-ms 50] [--concurrency 32] [--naive-subset 10]
                            [--worker-process]

One row of ``bench/fleet_refresh.py`` (which runs the whole matrix; ``bench/run_all.py`` runs every
benchmark): cold and warm refresh wall time, WinRM round trips per server (command log), the
console's CPU per server (this process only: the lab is another process), the lab's CPU per
request, the naive way (a new shell per call, servers one after another — measured on a subset and
extrapolated, as printed) and the ideal ceil(servers/concurrency) x 2 x latency. Basic auth over HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from fleet_refresh import report_runs, run_fleet
from report import Section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--naive-subset", type=int, default=10)
    parser.add_argument("--worker-process", action="store_true",
                        help="the console's backend: the WinRM calls made by its worker process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="emconsole-bench-") as tmp:
        run = asyncio.run(run_fleet(args.servers, args.latency_ms, args.naive_subset, Path(tmp),
                                    args.concurrency, args.worker_process))
    report_runs(Section(f"{args.servers} servers at {args.latency_ms:g} ms"), [run])


if __name__ == "__main__":
    main()
