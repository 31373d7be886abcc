"""``emconsole config check|path``: validate the configuration, or show where it is looked for.

Exit codes: 0 valid (warnings are printed but do not fail), 2 invalid or missing (the one-paragraph
error on stderr).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from emconsole.config import (
    Config,
    ConfigError,
    Scheme,
    Transport,
    config_locations,
    find_config,
    load_config,
)

HELP = "Check the configuration file, or show where it is looked for."
EPILOG = """\
commands:
  check   validate the file and print a summary (exit 0), or the problem (exit 2)
  path    print every place the file is looked for, in order, and which one is used

The file is looked for at --config PATH, then $EMCONSOLE_CONFIG, then the platform config
directory (~/.config/emconsole/config.toml on Linux). config.example.toml documents every key.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("check", "path"), help="what to do")


def warnings(config: Config) -> list[str]:
    """Settings that are valid but weaken safety or are likely to fail against real Exchange."""
    out: list[str] = []
    if not config.servers:
        out.append("no [[servers]] defined")
    for s in config.servers:
        if s.scheme is Scheme.HTTPS and not s.tls_verify:
            out.append(f"{s.name}: tls_verify = false, the server's certificate is not checked")
        if s.scheme is Scheme.HTTP and s.transport is Transport.BASIC:
            out.append(f"{s.name}: basic over http sends the password unencrypted")
        if s.transport is Transport.NTLM:
            out.append(f"{s.name}: ntlm sessions cannot reach Active Directory (second hop); "
                       "Exchange cmdlets need kerberos with delegation or credssp")
        files = {"ca_bundle": s.ca_bundle, "cert_pem": s.cert_pem, "cert_key_pem": s.cert_key_pem}
        for label, path in files.items():
            if path is not None and not path.is_file():
                out.append(f"{s.name}: {label} {path} does not exist")
    return out


def summary(config: Config) -> list[str]:
    transports = Counter(s.transport.value for s in config.servers)
    schemes = Counter(s.scheme.value for s in config.servers)
    lines = [
        f"servers: {len(config.servers)}",
        "transports: " + (", ".join(f"{k} {v}" for k, v in sorted(transports.items())) or "-"),
        "schemes: " + (", ".join(f"{k} {v}" for k, v in sorted(schemes.items())) or "-"),
        f"concurrency {config.concurrency}, call timeout {config.call_timeout:g} s, "
        f"refresh every {config.refresh_interval:g} s" + (", read-only" if config.read_only else ""),
    ]
    if config.extra_builds or config.extra_catalogue:
        lines.append(f"extra builds: {len(config.extra_builds)}, extra catalogue entries: "
                     f"{len(config.extra_catalogue)}")
    return lines


def _check(explicit: str | None) -> int:
    try:
        config, location = load_config(explicit)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{location.path}: valid")
    for line in summary(config):
        print(f"  {line}")
    for line in warnings(config):
        print(f"warning: {line}")
    return 0


def _path(explicit: str | None) -> int:
    used = find_config(explicit)
    for loc in config_locations(explicit):
        state = "exists" if loc.exists else "missing"
        mark = " <- used" if used is not None and loc == used else ""
        print(f"{loc.origin}: {loc.path} ({state}){mark}")
    if used is None:
        print("no configuration file found")
    return 0


def run(args: argparse.Namespace) -> int:
    explicit = getattr(args, "config", None)
    return _check(explicit) if args.action == "check" else _path(explicit)
