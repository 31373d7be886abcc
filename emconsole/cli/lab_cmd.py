"""``emconsole lab``: serve a lab fleet over WS-Management in the foreground until Ctrl+C or SIGTERM.

Every server runs the emulated Exchange organisation (``backends/lab/exchange``). Importing this
module is cheap (the fault tables only); the lab itself is imported when it starts.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TypeVar

from emconsole.backends.lab.configfile import PASSWORD_ENV, config_text  # config_text: used by tests too
from emconsole.backends.lab.spec import (
    AUTH_SCHEMES,
    DEFAULT_DOMAIN,
    DEFAULT_FIRST_PORT,
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    TRANSPORT_FAULTS,
    host_faults,
)

if TYPE_CHECKING:
    from emconsole.backends.lab.fleet import LabFleet
    from emconsole.backends.lab.spec import LabSpec

T = TypeVar("T")

PYWINRM_TRANSPORT = {"basic": "basic", "ntlm": "ntlm", "certificate": "certificate"}

HELP = f"""Serve a lab fleet of emulated Exchange servers over WS-Management (WinRM) on loopback.

Server i (LAB-EX01, LAB-EX02, ...) listens on 127.0.0.1 at port PORT+i-1 (default PORT
{DEFAULT_FIRST_PORT}), path /wsman, and runs an emulated Exchange Mailbox server of one organisation:
Windows PowerShell 5.1 (the subset in POWERSHELL-SUBSET.md), the Exchange shell and cmdlets, IIS
URL Rewrite, the Emergency Mitigation service on a virtual clock. When every port listens, one line
starting 'lab ready:' says where and how to connect. Ctrl+C or SIGTERM stops the lab and prints
its counters (requests by action, shells, commands, bytes, CPU)."""


def _fault_lines(table: dict[str, tuple[str, str]]) -> list[str]:
    return [f"  {usage:<24}{text}" for usage, text in table.values()]


EPILOG = "\n".join(
    [
        "faults (--faults, or 'faults' in the lab file / a [server.N] table):",
        "  SPEC = ITEM[;ITEM...]   ITEM = NAME[=VALUE][:TARGETS]",
        "  TARGETS = N | N-M | * | P% (that share of the servers, chosen by --seed), comma-separated;",
        "  no TARGETS = every server.  Example: --faults 'hang:3,7;latency=200:1-5;ocs-unreachable:10%'",
        "transport faults (the WinRM service):",
        *_fault_lines(TRANSPORT_FAULTS),
        "PowerShell / Exchange faults (behind the wire):",
        *_fault_lines(host_faults()),
        "",
        "lab file (--lab-file PATH, TOML; options override it; example: docs/lab-example.toml):",
        "  servers, first_port, scheme, auth, username, domain, allow_unencrypted, seed, latency_ms, faults",
        "  [exchange]  the organisation: org_name, domain, org_mitigations_enabled, block_match",
        "              (short | full: whether MitigationsBlocked matches M2 or M2.1.0),",
        "              applied_time_property, lab_examples (publish the LAB-ONLY service/app-pool",
        "              mitigations), clock_start (ISO time), clock_rate (lab seconds per wall second,",
        "              'demo' = 60, 0 = frozen),",
        "              builds (list cycled over the servers), warm (one EM run before the start);",
        "              and any per-server key below, as every server's default",
        '  [server.N]  one server (N as in LAB-EX03 = 3): faults = "...", build ("2019 CU15 Feb26SU" or',
        '              "15.2.1748.43"), mitigations_enabled, blocked = [...], applied = [...] (IDs already',
        "              applied, artifacts in place), service (running | stopped | disabled), m1 (applied |",
        "              leftover | none: old 2016 CU23 builds), data_collection, proxy",
        "  Passwords are never read from the file.",
        "",
        f"credentials: user '{DEFAULT_USER}' (--user), domain {DEFAULT_DOMAIN}; the password is --password,",
        f"  else ${PASSWORD_ENV}, else '{DEFAULT_PASSWORD}'. Basic accepts USER or {DEFAULT_DOMAIN}\\USER;",
        f"  NTLM {DEFAULT_DOMAIN}\\USER (messages encrypted over http); certificate (https only): the",
        "  client certificate the lab's CA signs for USER, written next to the CA (client.pem,",
        "  client-key.pem).",
        "",
        "plain pywinrm against the first server (the 'lab ready:' line prints the exact call):",
        f"  winrm.Session('http://127.0.0.1:{DEFAULT_FIRST_PORT}/wsman', auth=('{DEFAULT_USER}', PASSWORD),",
        "                transport='basic', proxy=None).run_ps('Get-Service MSExchangeMitigation')",
        "  https: add ca_trust_path=CA (the ca path of the ready line); ntlm: transport='ntlm';",
        "  certificate: auth=(None, None), transport='certificate', cert_pem=..., cert_key_pem=...",
        "  Exchange cmdlets need the shell loaded first, as on a server:",
        "  'Add-PSSnapin Microsoft.Exchange.Management.PowerShell.SnapIn' (or RemoteExchange.ps1).",
        "",
        "--write-config PATH writes an emconsole config for the fleet (password_from",
        f'  "env:{PASSWORD_ENV}", never the password) with the LAB-ONLY catalogue entries as',
        "  [[extra_catalogue]]; check it with 'emconsole --config PATH config check'.",
    ]
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--servers", type=int, metavar="N", help="number of servers (default 3)")
    parser.add_argument("--seed", type=int, metavar="S", help="seed for builds, P%% targets, the emulation")
    parser.add_argument(
        "--port", type=int, metavar="P", help=f"first port (default {DEFAULT_FIRST_PORT}; 0 any)"
    )
    parser.add_argument("--scheme", choices=("http", "https"), help="default http")
    parser.add_argument(
        "--auth",
        choices=AUTH_SCHEMES,
        help="default basic (ntlm: message encryption on http; certificate: https only)",
    )
    parser.add_argument("--latency-ms", type=float, metavar="L", help="latency added to every request")
    parser.add_argument("--faults", metavar="SPEC", help="faults, see below (added to the lab file's)")
    parser.add_argument("--lab-file", type=Path, metavar="PATH", help="a lab TOML file (options override it)")
    parser.add_argument(
        "--user", metavar="NAME", help=f"the account the lab accepts (default {DEFAULT_USER})"
    )
    parser.add_argument(
        "--password", metavar="PW", help=f"its password (default ${PASSWORD_ENV}, or built-in)"
    )
    parser.add_argument(
        "--refuse-unencrypted",
        action="store_true",
        help="refuse Basic over http, as WinRM with AllowUnencrypted=false does",
    )
    parser.add_argument(
        "--block-match",
        choices=("short", "full"),
        help="whether MitigationsBlocked matches short (M2) or full (M2.1.0) IDs (default short)",
    )
    parser.add_argument(
        "--clock-rate",
        metavar="RATE",
        help="lab seconds per wall second: 'demo' (60, the default: an EM hour a minute), 1, or 0 (frozen)",
    )
    parser.add_argument(
        "--ems",
        choices=("remoteexchange", "snapin"),
        default="remoteexchange",
        help="how the written config loads the Exchange shell (default remoteexchange)",
    )
    parser.add_argument(
        "--write-config",
        type=Path,
        metavar="PATH",
        help=f"write an emconsole config for this fleet (password_from env:{PASSWORD_ENV})",
    )


def _given(value: T | None, current: T) -> T:
    """The command-line value when the option was given, else the lab file's (or default) one."""
    return current if value is None else value


def _spec_from_args(args: argparse.Namespace) -> LabSpec:
    from emconsole.backends.lab.spec import LabSpec, load_lab_toml

    spec = load_lab_toml(args.lab_file) if args.lab_file else LabSpec()
    password = args.password or os.environ.get(PASSWORD_ENV)
    exchange = dict(spec.exchange)
    exchange.setdefault("clock_rate", "demo")
    if args.clock_rate is not None:
        exchange["clock_rate"] = args.clock_rate
    if args.block_match is not None:
        exchange["block_match"] = args.block_match
    spec = replace(
        spec,
        servers=_given(args.servers, spec.servers),
        seed=_given(args.seed, spec.seed),
        first_port=_given(args.port, spec.first_port),
        scheme=_given(args.scheme, spec.scheme),
        auth=_given(args.auth, spec.auth),
        latency_ms=_given(args.latency_ms, spec.latency_ms),
        username=_given(args.user, spec.username),
        faults=";".join(f for f in (spec.faults, args.faults) if f),
        allow_unencrypted=False if args.refuse_unencrypted else spec.allow_unencrypted,
        password=password or spec.password,
        exchange=exchange,
    )
    spec.validate()
    return spec


def ready_line(fleet: LabFleet, config: str, password_source: str) -> str:
    """The one line a reviewer needs: where the servers are, how to log on, a pywinrm call that works."""
    spec = fleet.spec
    url = fleet.endpoint(1)
    transport = PYWINRM_TRANSPORT[spec.auth]
    if spec.auth == "basic" and spec.scheme == "https":
        transport = "ssl"
    parts = [
        f"lab ready: {spec.servers} servers ({fleet.servers[0].name}..{fleet.servers[-1].name})",
        f"first port {fleet.first_port}",
        f"scheme {spec.scheme}",
        f"auth {spec.auth}",
    ]
    call = [repr(url)]
    if spec.auth == "certificate":
        assert fleet.client_cert is not None
        cert, key = (str(p) for p in fleet.client_cert)
        parts += [f"user {spec.username} by client certificate", f"cert {cert}", f"key {key}"]
        call += ["auth=(None, None)", f"transport={transport!r}"]
        call += [f"cert_pem={cert!r}", f"cert_key_pem={key!r}"]
    else:
        user = f"{spec.domain}\\{spec.username}" if spec.auth == "ntlm" else spec.username
        parts += [f"user {spec.username}", f"password {password_source}"]
        call += [f"auth=({user!r}, PASSWORD)", f"transport={transport!r}"]
    if fleet.ca_path is not None:
        parts.append(f"ca {fleet.ca_path}")
        call.append(f"ca_trust_path={str(fleet.ca_path)!r}")
    parts.append(f"config {config}")
    call.append("proxy=None")
    return ", ".join(parts) + f"; pywinrm: winrm.Session({', '.join(call)})"


def _password_source(args: argparse.Namespace) -> str:
    if args.password:
        return "from --password"
    if os.environ.get(PASSWORD_ENV):
        return f"from ${PASSWORD_ENV}"
    return "built-in (see --help)"


def run(args: argparse.Namespace) -> int:
    from emconsole.backends.lab.fleet import LabFleet
    from emconsole.backends.lab.spec import SpecError
    from emconsole.backends.lab.wire.counters import format_counters

    try:
        spec = _spec_from_args(args)
        fleet = LabFleet(spec).start()
    except SpecError as exc:
        print(f"emconsole lab: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Both stop the lab the same way; SIGINT explicitly, as a background job starts with it ignored.
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        config = "-"
        if args.write_config:
            args.write_config.write_text(config_text(fleet, args.ems), encoding="utf-8")
            config = str(args.write_config)
        print(ready_line(fleet, config, _password_source(args)), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        snapshot = fleet.counters.snapshot()
        fleet.stop()
        print(format_counters(snapshot), flush=True)
    return 0
