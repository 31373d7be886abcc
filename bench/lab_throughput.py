"""How many ``Session.run_ps`` calls per second one lab process sustains, and its CPU per request.

The lab (200 servers by default) runs in this process; the pywinrm clients run in separate
processes so their CPU is not charged to the lab. Each run_ps is the naive five-request cycle
(Create, Command, Receive, Signal, Delete) on a fresh connection; the command, ``Get-Date``, runs in
the lab's PowerShell on its emulated Exchange server (the default host).

    python bench/lab_throughput.py [--servers 200] [--duration 5] [--clients 1] [--threads 16]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor


def _client(args: argparse.Namespace) -> None:
    """Client mode: hammer ports first..first+servers-1 until the deadline, print the count as JSON."""
    import winrm

    ports = [args.first_port + i for i in range(args.servers)][args.index :: args.clients]
    deadline = time.monotonic() + args.duration
    counts = [0] * args.threads
    errors = [0] * args.threads

    def worker(slot: int) -> None:
        mine = ports[slot :: args.threads] or ports
        sessions = [
            winrm.Session(
                f"{args.scheme}://127.0.0.1:{p}/wsman",
                auth=(args.user, args.password),
                transport="ssl" if args.scheme == "https" else args.auth,
                proxy=None,
                server_cert_validation="ignore",
            )
            for p in mine
        ]
        i = 0
        while time.monotonic() < deadline:
            try:
                sessions[i % len(sessions)].run_ps("Get-Date")
                counts[slot] += 1
            except Exception:
                errors[slot] += 1
            i += 1

    with ThreadPoolExecutor(args.threads) as pool:
        list(pool.map(worker, range(args.threads)))
    print(json.dumps({"calls": sum(counts), "errors": sum(errors)}))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=200)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=1, help="client processes")
    parser.add_argument("--threads", type=int, default=16, help="threads per client process")
    parser.add_argument("--auth", choices=("basic", "ntlm"), default="basic")
    parser.add_argument("--scheme", choices=("http", "https"), default="http")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--first-port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--user", default="", help=argparse.SUPPRESS)
    parser.add_argument("--password", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        _client(args)
        return 0

    from emconsole.backends.lab.fleet import LabFleet
    from emconsole.backends.lab.spec import LabSpec

    spec = LabSpec(servers=args.servers, first_port=0, auth=args.auth, scheme=args.scheme)
    threads_before = threading.active_count()
    with LabFleet(spec) as fleet:
        before = fleet.counters.snapshot()
        common = [
            sys.executable,
            __file__,
            "--client",
            "--servers",
            str(args.servers),
            "--first-port",
            str(fleet.first_port),
            "--duration",
            str(args.duration),
            "--clients",
            str(args.clients),
            "--threads",
            str(args.threads),
            "--auth",
            args.auth,
            "--scheme",
            args.scheme,
            "--user",
            spec.username,
            "--password",
            spec.password,
        ]
        started = time.monotonic()
        procs = [
            subprocess.Popen([*common, "--index", str(i)], stdout=subprocess.PIPE, text=True)
            for i in range(args.clients)
        ]
        results = [json.loads(p.communicate()[0]) for p in procs]
        elapsed = time.monotonic() - started
        after = fleet.counters.snapshot()
    calls = sum(r["calls"] for r in results)
    errors = sum(r["errors"] for r in results)
    requests = after["requests"] - before["requests"]
    cpu = after["loop_cpu_s"] - before["loop_cpu_s"]
    print(
        f"lab: {args.servers} servers, {args.scheme}/{args.auth}; clients: {args.clients} process(es) x "
        f"{args.threads} threads for {args.duration:.0f} s (wall {elapsed:.1f} s)"
    )
    print(f"run_ps calls/second: {calls / args.duration:.1f} ({calls} calls, {errors} errors)")
    print(
        f"lab requests/second: {requests / args.duration:.1f}; lab CPU per request: "
        f"{cpu / requests * 1000 if requests else 0:.3f} ms "
        f"({cpu / calls * 1000 if calls else 0:.3f} ms per run_ps)"
    )
    print(
        f"lab threads: {after['threads']} while serving (1 loop thread); back to {threading.active_count()} "
        f"after stop (was {threads_before})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
