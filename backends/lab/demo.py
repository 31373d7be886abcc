"""The ``emconsole --demo`` fleet: a lab organisation in this process, and a config that points at it.

Why a fixed shape: the demo is the README's first command, so it must show what the console is for
at a glance — a mix of Exchange builds and sites, a few servers with EM switched off, OCS
unreachable or the EM service stopped, and a few that fail in different ways (wrong password,
hang, refused connection, Exchange shell that will not load). The seed makes it the same every
time (the snapshot tests and ``docs/screenshot.py`` rely on that).

The password is made up per run and handed over through an environment variable of this process
(``password_from = "env:EMCONSOLE_LAB_PASSWORD"``): it is never written to disk, and the config
carries no secret.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from typing import Any

from emconsole.backends.lab.spec import LabSpec

from emconsole.config import Config
from emconsole.labconfig import LAB_PASSWORD_ENV, Lab, lab_extras, lab_servers, start_lab

DEMO_SERVERS = 36
DEMO_SEED = 7
#: Transport faults (the wire) and host faults (PowerShell / Exchange), in the lab's fault syntax.
DEMO_FAULTS = (
    "latency=40;wrong-credentials:5;hang:11;refuse:23;ems-unavailable:27;"
    "ocs-unreachable:8,30;service-stopped:14"
)
#: Per-server Exchange state, by server number (``[server.N.exchange]`` of a lab file).
DEMO_EXCHANGE: Mapping[int, Mapping[str, Any]] = {
    3: {"mitigations_enabled": False},
    17: {"blocked": ["M2"]},
    20: {"mitigations_enabled": False, "blocked": ["M1", "M2"]},
    33: {"data_collection": True},
}
SITES = ("AMS", "FRA", "LON", "NYC")
#: A hung server's refresh gives up after this long (the demo should show the timeout, not wait a minute).
CALL_TIMEOUT_S = 5.0
REFRESH_INTERVAL_S = 30.0
#: Made up once per process: every demo lab of this process shares it, so the one environment
#: variable ``password_from`` names is right for all of them (tests start several).
_PASSWORD = secrets.token_urlsafe(18)


def site_of(number: int, servers: int) -> str:
    """Servers are spread over the sites in contiguous blocks, as real fleets are numbered."""
    per_site = max(1, -(-servers // len(SITES)))
    return SITES[min(len(SITES) - 1, (number - 1) // per_site)]


def demo_spec(servers: int = DEMO_SERVERS, seed: int = DEMO_SEED, faults: str = DEMO_FAULTS, *,
              clock_rate: str | float | None = "demo", password: str = "", first_port: int = 0,
              scripted: Mapping[int, Mapping[str, Any]] | None = None,
              org: Mapping[str, Any] | None = None) -> LabSpec:
    """The lab spec of the demo (``clock_rate`` None: a manual lab clock, for tests and screenshots;
    ``first_port`` 0: a free range). ``scripted``: per-server Exchange keys instead of the demo's
    (tests script known builds and states on the demo's shape); ``org``: organisation keys added."""
    exchange: dict[str, Any] = {"org_name": "Contoso", "domain": "contoso.local", **(org or {})}
    if clock_rate is not None:
        exchange["clock_rate"] = clock_rate
    chosen = DEMO_EXCHANGE if scripted is None else scripted
    per_server = {n: {"exchange": dict(extra)} for n, extra in chosen.items() if n <= servers}
    return LabSpec(servers=servers, first_port=first_port, seed=seed, faults=faults, exchange=exchange,
                   per_server=per_server, password=password or _PASSWORD)


def demo_config(lab: Lab) -> Config:
    """A config for the started demo lab: servers tagged by site, the password read from the environment,
    the lab's LAB-ONLY mitigations as catalogue extras (so their services and app pools are read)."""
    fleet = lab.fleet
    count = fleet.spec.servers
    servers = tuple(
        server.model_copy(update={"tags": {"site": site_of(spec.number, count), "environment": "demo"}})
        for server, spec in zip(lab_servers(fleet), fleet.servers, strict=True)
    )
    return Config(servers=servers, refresh_interval=REFRESH_INTERVAL_S, call_timeout=CALL_TIMEOUT_S,
                  concurrency=16, audit_path=fleet.directory / "audit.jsonl", **lab_extras(fleet))


def start_demo_lab(servers: int = DEMO_SERVERS, seed: int = DEMO_SEED, faults: str = DEMO_FAULTS, *,
                   clock_rate: str | float | None = "demo", first_port: int = 0,
                   scripted: Mapping[int, Mapping[str, Any]] | None = None,
                   org: Mapping[str, Any] | None = None) -> tuple[Lab, Config]:
    """Start the demo lab (the caller stops it) and return it with a config that reaches it.

    The password goes into this process's environment, where ``password_from`` finds it. The audit
    log goes to the lab's temporary directory: demo changes are not the operator's record.
    """
    lab = start_lab(demo_spec(servers, seed, faults, clock_rate=clock_rate, first_port=first_port,
                              scripted=scripted, org=org))
    os.environ[LAB_PASSWORD_ENV] = lab.fleet.spec.password
    try:
        return lab, demo_config(lab)
    except BaseException:
        lab.stop()
        raise
