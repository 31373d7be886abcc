"""The Exchange side of a lab spec: organisation settings, per-server builds and states, host faults.

Read from ``LabSpec.exchange`` (every server) and ``ServerSpec.exchange`` (``[server.N]``),
plain dicts owned by ``backends/lab/spec.py``; host fault names are registered there so the one
fault syntax (``--faults 'ocs-unreachable:2;slow=5:3'``) covers them.

Organisation keys (``[exchange]``): ``org_name``, ``domain``, ``org_mitigations_enabled`` (bool),
``block_match`` (``short`` | ``full``), ``applied_time_property`` (bool), ``lab_examples`` (bool: the
LAB-ONLY service / app-pool catalogue entries), ``clock_start`` (ISO time), ``clock_rate`` (lab
seconds per wall second; ``demo`` = 60; absent or 0 = manual clock), ``builds`` (list of builds cycled
over the servers instead of the seeded mix), ``warm`` (bool: one EM run before the start time).
Per-server keys (also in ``[exchange]`` as every server's default): ``build`` (``"2019 CU15
Feb26SU"`` or ``"15.2.1748.43"``), ``mitigations_enabled``,
``blocked`` (list), ``applied`` (list: IDs already applied, their artifacts in place),
``service`` (``running`` | ``stopped`` | ``disabled``), ``m1`` (``applied`` | ``leftover`` | ``none``,
old 2016 CU23 builds only; default ``applied``), ``data_collection``, ``proxy``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from emconsole.backends.lab import spec as lab_spec
from emconsole.backends.lab.exchange import builds
from emconsole.backends.lab.exchange.clock import DEFAULT_START, DEMO_RATE

# name -> (usage, what it does); kept in step with HostFaults in org.py and builder.host_faults.
HOST_FAULTS: dict[str, tuple[str, str]] = {
    "ems-unavailable": ("ems-unavailable", "the snap-in / RemoteExchange.ps1 cannot load (AddPSSnapInRead)"),
    "ad-second-hop": (
        "ad-second-hop",
        "Exchange cmdlets fail with ADOperationException, as without delegated credentials",
    ),
    "ocs-unreachable": (
        "ocs-unreachable",
        "the EM service cannot reach OCS: event 1008, Test-MitigationServiceConnectivity fails",
    ),
    "service-stopped": ("service-stopped", "MSExchangeMitigation starts out stopped (start type kept)"),
    "service-disabled": ("service-disabled", "MSExchangeMitigation starts out stopped and disabled"),
    "garbage": ("garbage", "every command's stdout is replaced by bytes that are no text"),
    "truncate": ("truncate", "every command's stdout is cut in the middle"),
    "slow": ("slow=SECONDS", "every command takes that long (default 30; inf = never ends)"),
}
lab_spec.HOST_FAULTS.update(HOST_FAULTS)

BUILD_MIX = (
    "2019 CU15 Feb26SU",
    "2019 CU14 Feb26SU",
    "Exchange SE RTM Feb26SU",
    "2016 CU23 Feb26SU",
    "2019 CU15 Dec25SU",
    "Exchange SE RTM Jul26SU",
    "2016 CU23 Oct22SU",
    "2019 CU14 Nov24SUv2",
)
_ORG_KEYS = {
    "org_name",
    "domain",
    "org_mitigations_enabled",
    "block_match",
    "applied_time_property",
    "lab_examples",
    "clock_start",
    "clock_rate",
    "builds",
    "warm",
}
_SERVER_KEYS = {
    "build",
    "mitigations_enabled",
    "blocked",
    "applied",
    "service",
    "m1",
    "data_collection",
    "proxy",
}


@dataclass(frozen=True)
class ExchangeServerSpec:
    """One server's initial Exchange state; None = the seeded default."""

    build: str | None = None
    mitigations_enabled: bool = True
    blocked: tuple[str, ...] = ()
    applied: tuple[str, ...] | None = None
    service: str = "running"
    m1: str = "applied"
    data_collection: bool = False
    proxy: str | None = None
    faults: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ExchangeSpec:
    """The organisation's settings and its servers (name -> spec)."""

    servers: dict[str, ExchangeServerSpec]
    seed: int = 0
    org_name: str = "LabOrg"
    domain: str = "contoso.local"
    org_mitigations_enabled: bool = True
    block_match: str = "short"
    applied_time_property: bool = True
    lab_examples: bool = True
    clock_start: datetime = DEFAULT_START
    clock_rate: float | None = None
    builds: tuple[str, ...] = ()
    warm: bool = True


def _check(keys: set[str], known: set[str], where: str) -> None:
    unknown = sorted(keys - known)
    if unknown:
        raise lab_spec.SpecError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")


def _known_build(value: Any) -> str:
    """A build label or number the lab knows (``builds.py``), else SpecError naming the choices."""
    try:
        return builds.build(str(value)).version
    except KeyError:
        labels = sorted({b.label.replace("Exchange ", "") for b in builds.BUILDS.values()})
        raise lab_spec.SpecError(
            f"unknown lab build {value!r}; use a number or a label such as {', '.join(labels[:4])}, ..."
        ) from None


def server_spec(
    data: dict[str, Any], faults: dict[str, str] | None = None, where: str = "[exchange] server keys"
) -> ExchangeServerSpec:
    """One ``[server.N]`` table's Exchange keys (plus the server's host faults)."""
    _check(set(data), _SERVER_KEYS, where)
    slow = (faults or {}).get("slow")
    if slow:
        try:
            float(slow)
        except ValueError:
            raise lab_spec.SpecError(f"slow takes seconds (or inf), not {slow!r}") from None
    service = str(data.get("service", "running"))
    if service not in ("running", "stopped", "disabled"):
        raise lab_spec.SpecError(f"service must be running, stopped or disabled, not {service!r}")
    m1 = str(data.get("m1", "applied"))
    if m1 not in ("applied", "leftover", "none"):
        raise lab_spec.SpecError(f"m1 must be applied, leftover or none, not {m1!r}")
    applied = data.get("applied")
    return ExchangeServerSpec(
        build=None if data.get("build") is None else _known_build(data["build"]),
        mitigations_enabled=bool(data.get("mitigations_enabled", True)),
        blocked=tuple(data.get("blocked", ())),
        applied=None if applied is None else tuple(applied),
        service=service,
        m1=m1,
        data_collection=bool(data.get("data_collection", False)),
        proxy=data.get("proxy"),
        faults=dict(faults or {}),
    )


def from_lab_spec(spec: lab_spec.LabSpec, servers: list[lab_spec.ServerSpec]) -> ExchangeSpec:
    """The Exchange spec of a wire lab spec (global ``exchange`` keys + each server's)."""
    data = dict(spec.exchange)
    _check(set(data) - _SERVER_KEYS, _ORG_KEYS, "[exchange]")
    org_part = {k: v for k, v in data.items() if k in _ORG_KEYS}
    per_server = {
        s.name: server_spec(
            {k: v for k, v in s.exchange.items() if k not in _ORG_KEYS}, s.host_faults, f"[server.{s.number}]"
        )
        for s in servers
    }
    return org_spec(org_part, per_server, spec.seed)


def org_spec(data: dict[str, Any], servers: dict[str, ExchangeServerSpec], seed: int = 0) -> ExchangeSpec:
    """Organisation keys (see module doc) over the given servers."""
    _check(set(data), _ORG_KEYS, "[exchange]")
    block_match = str(data.get("block_match", "short"))
    if block_match not in ("short", "full"):
        raise lab_spec.SpecError(f"block_match must be short or full, not {block_match!r}")
    rate = data.get("clock_rate")
    start = data.get("clock_start", DEFAULT_START)
    try:
        if isinstance(start, str):
            start = datetime.fromisoformat(start.replace("Z", "+00:00"))
        rate = DEMO_RATE if rate == "demo" else (None if rate is None else float(rate))
    except ValueError as exc:
        raise lab_spec.SpecError(f"[exchange] clock_start / clock_rate: {exc}") from None
    if not isinstance(start, datetime) or (rate is not None and rate < 0):
        raise lab_spec.SpecError("[exchange] clock_start must be a time, clock_rate 'demo' or >= 0")
    return ExchangeSpec(
        servers=servers,
        seed=seed,
        org_name=str(data.get("org_name", "LabOrg")),
        domain=str(data.get("domain", "contoso.local")),
        org_mitigations_enabled=bool(data.get("org_mitigations_enabled", True)),
        block_match=block_match,
        applied_time_property=bool(data.get("applied_time_property", True)),
        lab_examples=bool(data.get("lab_examples", True)),
        clock_start=start,
        clock_rate=rate or None,
        builds=tuple(_known_build(b) for b in data.get("builds", ())),
        warm=bool(data.get("warm", True)),
    )
