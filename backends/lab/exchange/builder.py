"""Build a lab organisation from an ``ExchangeSpec``: deterministic for a seed, scriptable per server."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from random import Random

from emconsole.backends.lab.exchange import builds
from emconsole.backends.lab.exchange.catalogue import M1, CatalogueState
from emconsole.backends.lab.exchange.clock import VirtualClock
from emconsole.backends.lab.exchange.commands import script_files
from emconsole.backends.lab.exchange.directory import Directory, OrgRecord
from emconsole.backends.lab.exchange.engine import RUN_INTERVAL, apply_entry, run_em
from emconsole.backends.lab.exchange.org import HostFaults, LabServer, Organisation
from emconsole.backends.lab.exchange.spec import BUILD_MIX, ExchangeServerSpec, ExchangeSpec
from emconsole.backends.lab.exchange.windows import EM_SERVICE

M1_APPLIED_AT = datetime(2022, 10, 4, 12, 0, tzinfo=timezone.utc)  # when M1 went out (ProxyNotShell)
WARM_RUN_BEFORE = timedelta(minutes=30)


def host_faults(faults: dict[str, str]) -> HostFaults:
    """HostFaults from fault names (``slow`` takes seconds; ``inf`` hangs)."""
    return HostFaults(
        ems_unavailable="ems-unavailable" in faults,
        ad_second_hop="ad-second-hop" in faults,
        ocs_unreachable="ocs-unreachable" in faults,
        garbage="garbage" in faults,
        truncate="truncate" in faults,
        slow_s=float(faults.get("slow") or 30.0) if "slow" in faults else 0.0,
    )


def build_org(spec: ExchangeSpec) -> Organisation:
    """An organisation with the spec's servers, in a steady state at ``spec.clock_start``."""
    rng = Random(spec.seed)
    clock = VirtualClock(spec.clock_start, spec.clock_rate)
    directory = Directory(
        domain=spec.domain,
        dc=f"dc01.{spec.domain}",
        org=OrgRecord(
            spec.org_name, spec.org_mitigations_enabled, str(uuid.UUID(int=rng.getrandbits(128), version=4))
        ),
        block_match=spec.block_match,
        applied_time_property=spec.applied_time_property,
    )
    org = Organisation(clock, directory, CatalogueState(lab_examples=spec.lab_examples), spec.seed)
    mix = list(spec.builds)
    if not mix:
        mix = list(BUILD_MIX)
        rng.shuffle(mix)
    for index, (name, server_spec) in enumerate(spec.servers.items()):
        build = builds.build(server_spec.build or mix[index % len(mix)])
        _set_up(org, org.add_server(name, build, rng), server_spec, spec.warm)
    return org


def _set_up(org: Organisation, server: LabServer, spec: ExchangeServerSpec, warm: bool) -> None:
    start = org.clock.now()
    record = server.record
    record.mitigations_enabled = spec.mitigations_enabled
    record.blocked = list(spec.blocked)
    record.data_collection = spec.data_collection
    record.proxy = spec.proxy
    server.faults = host_faults(spec.faults)
    for path in script_files(not server.faults.ems_unavailable):
        server.windows.write_file(path, "# Exchange Server script (lab)\r\n", M1_APPLIED_AT)
    if not record.build.can_fetch and M1.fits(record.build) and spec.m1 != "none":
        org.leave_m1(server, spec.m1 == "applied", M1_APPLIED_AT)
    for full_id in spec.applied or ():
        entry = org.catalogue.describe(full_id)
        if entry is None:
            record.applied.append(full_id)
        else:
            apply_entry(server, entry, start - WARM_RUN_BEFORE)
    service = server.windows.service(EM_SERVICE)
    assert service is not None
    state = (
        "disabled"
        if "service-disabled" in spec.faults
        else "stopped"
        if "service-stopped" in spec.faults
        else spec.service
    )
    if state != "running":
        server.windows.stop(EM_SERVICE)
        if state == "disabled":
            service.start_type = "Disabled"
        return
    if warm and spec.applied is None:
        run_em(server, start - WARM_RUN_BEFORE)
        server.next_run = start - WARM_RUN_BEFORE + RUN_INTERVAL
    else:
        server.service_started(start)
