"""Every benchmark of issue 8, one after another; the results go to docs/performance.md.

    python bench/run_all.py            # the full run (about 5-6 minutes on 2 cores), writes the docs
    python bench/run_all.py --quick    # a smoke run (under a minute), prints only

1. fleet refresh (bench/fleet_refresh.py)  2. startup (bench/startup.py)  3. UI under load
(bench/ui_load.py)  4. memory (bench/memory.py)  5. per-call overhead (bench/overhead.py). Each one
measures emconsole and its baseline in the same run and prints the ratio; every lab runs in its own
`emconsole lab` process. The machine (CPU, cores, RAM, Python, OS) is read from the machine and
written with the results, between the marker lines of docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

import fleet_refresh
import memory
import overhead
import startup
import ui_load
from machine import describe
from report import Section, write_performance

BENCHMARKS: dict[str, Callable[[bool], Section]] = {
    "refresh": lambda quick: asyncio.run(fleet_refresh.bench(quick)),
    "startup": startup.bench,
    "ui": ui_load.bench,
    "memory": memory.bench,
    "overhead": overhead.bench,
}
DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small fleets, few runs; prints only")
    parser.add_argument("--only", metavar="NAMES", help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    parser.add_argument("--output", type=Path, default=None,
                        help=f"write the results here (default for a full run of all: {DOC})")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    machine = describe()
    print("machine: " + "; ".join(f"{k} {v}" for k, v in machine.items()), flush=True)
    started = time.perf_counter()
    sections = [BENCHMARKS[name](args.quick) for name in names]
    took = time.perf_counter() - started
    print(f"all done in {took:.0f} s", flush=True)
    output = args.output or (DOC if not args.quick and not args.only else None)
    if output is not None and not args.no_write:
        command = "python bench/run_all.py" + (" --quick" if args.quick else "") + (
            f" --only {args.only}" if args.only else "")
        machine["benchmark run time"] = f"{took:.0f} s"
        write_performance(output, machine, command, sections)
        print(f"written to {output}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
