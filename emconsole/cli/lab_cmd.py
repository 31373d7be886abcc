"""``emconsole lab``: serve a lab fleet over WS-Management in the foreground until Ctrl+C or SIGTERM."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emconsole.backends.lab.fleet import LabFleet
    from emconsole.backends.lab.spec import LabSpec

PASSWORD_ENV = "EMCONSOLE_LAB_PASSWORD"

HELP = """Serve a lab fleet of emulated servers over WS-Management (WinRM) on loopback.

Server i (LAB-EX01, LAB-EX02, ...) listens on 127.0.0.1 at port PORT+i-1, path /wsman. When every
port listens, one line starting with 'lab ready:' is printed; Ctrl+C or SIGTERM stops the lab and
prints its counters."""

EPILOG = f"""fault syntax (--faults, or 'faults' in the lab file):
  ITEM[;ITEM...]   ITEM = NAME[=VALUE][:TARGETS]   TARGETS = N | N-M | * | P% (seeded), comma-separated
  latency=MS       add MS milliseconds to every request
  hang             read requests, never answer (the client's read timeout fires)
  refuse           the port is bound but not listening: connections are refused
  wrong-credentials  answer 401 to the right password too
  tls=wrong-name|expired  https: a certificate for another name, or an expired one
  expire=SECONDS   shells idle that long are gone (the next request gets InvalidSelectors)
  quota=N          MaxShellsPerUser (default 30)
  http-error=STATUS  a 5xx with an HTML body before authentication (default 503)
  reset            reset the connection in the middle of every response
  example: --faults 'hang:3,7;latency=200:1-5;tls=expired:10%'

lab file (--lab-file, TOML): servers, first_port, scheme, auth, username, domain, allow_unencrypted,
  seed, latency_ms, faults; [server.N] faults = "..."; [exchange] / [server.N.exchange] for the emulation.

credentials: user '{"labadmin"}' (--user); the password is --password, else ${PASSWORD_ENV},
  else 'Lab-Passw0rd!'. Basic accepts USER or LAB\\USER; NTLM accepts LAB\\USER.

plain pywinrm against the first server:
  winrm.Session('http://127.0.0.1:15985/wsman', auth=('labadmin', PASSWORD), transport='basic', proxy=None)
  https: transport='ssl', ca_trust_path=<ca path from the 'lab ready:' line>; ntlm: transport='ntlm'."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from emconsole.backends.lab.spec import DEFAULT_FIRST_PORT, DEFAULT_USER

    parser.add_argument("--servers", type=int, metavar="N", help="number of servers (default 3)")
    parser.add_argument("--seed", type=int, metavar="S", help="seed for P%% fault targets and the emulation")
    parser.add_argument("--port", type=int, metavar="P", help=f"first port (default {DEFAULT_FIRST_PORT})")
    parser.add_argument("--scheme", choices=("http", "https"), help="default http")
    parser.add_argument(
        "--auth", choices=("basic", "ntlm"), help="default basic (ntlm: message encryption on http)"
    )
    parser.add_argument("--latency-ms", type=float, metavar="L", help="latency added to every request")
    parser.add_argument(
        "--faults", metavar="SPEC", help="transport faults, see below (added to the lab file's)"
    )
    parser.add_argument("--lab-file", type=Path, metavar="PATH", help="a lab TOML file (options override it)")
    parser.add_argument(
        "--user", metavar="NAME", help=f"the account the lab accepts (default {DEFAULT_USER})"
    )
    parser.add_argument(
        "--password", metavar="PW", help=f"its password (default: ${PASSWORD_ENV} or built-in)"
    )
    parser.add_argument(
        "--refuse-unencrypted",
        action="store_true",
        help="refuse Basic over http, as WinRM with AllowUnencrypted=false does",
    )
    parser.add_argument(
        "--write-config",
        type=Path,
        metavar="PATH",
        help=f"write an emconsole config for this fleet (password_from env:{PASSWORD_ENV})",
    )


def _spec_from_args(args: argparse.Namespace) -> LabSpec:
    from emconsole.backends.lab.spec import LabSpec, load_lab_toml

    spec = load_lab_toml(args.lab_file) if args.lab_file else LabSpec()
    updates: dict[str, object] = {}
    for option, field_name in (
        ("servers", "servers"),
        ("seed", "seed"),
        ("port", "first_port"),
        ("scheme", "scheme"),
        ("auth", "auth"),
        ("latency_ms", "latency_ms"),
        ("user", "username"),
    ):
        value = getattr(args, option)
        if value is not None:
            updates[field_name] = value
    if args.faults:
        updates["faults"] = ";".join(f for f in (spec.faults, args.faults) if f)
    if args.refuse_unencrypted:
        updates["allow_unencrypted"] = False
    password = args.password or os.environ.get(PASSWORD_ENV)
    if password:
        updates["password"] = password
    spec = replace(spec, **updates)
    spec.validate()
    return spec


def config_text(fleet: LabFleet) -> str:
    """An emconsole config TOML for a started fleet; the password is referenced, never written."""
    spec = fleet.spec
    user = f"{spec.domain}\\{spec.username}" if spec.auth == "ntlm" else spec.username
    lines = [
        "# emconsole configuration for the fleet served by `emconsole lab` (written by --write-config).",
        f"# The password is read from the environment: export {PASSWORD_ENV}=...",
        "",
    ]
    for server in fleet.servers:
        lines += [
            "[[servers]]",
            f"name = {json.dumps(server.name)}",
            'host = "127.0.0.1"',
            f"port = {server.port}",
            f"scheme = {json.dumps(spec.scheme)}",
            f"transport = {json.dumps(spec.auth)}",
            f"username = {json.dumps(user)}",
            f'password_from = "env:{PASSWORD_ENV}"',
        ]
        if fleet.ca_path is not None:
            lines.append(f"ca_bundle = {json.dumps(str(fleet.ca_path))}")
        lines.append("")
    return "\n".join(lines)


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

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        config = "-"
        if args.write_config:
            args.write_config.write_text(config_text(fleet), encoding="utf-8")
            config = str(args.write_config)
        ca = f", ca {fleet.ca_path}" if fleet.ca_path else ""
        print(
            f"lab ready: {spec.servers} servers ({fleet.servers[0].name}..{fleet.servers[-1].name}), "
            f"first port {fleet.first_port}, scheme {spec.scheme}, auth {spec.auth}, user {spec.username}"
            f"{ca}, config {config}",
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        snapshot = fleet.counters.snapshot()
        fleet.stop()
        print(format_counters(snapshot), flush=True)
    return 0
