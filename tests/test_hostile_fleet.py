"""A 100-server lab where a third of the servers misbehave (every fault the lab has, alone and mixed):
one refresh and one bulk block of M2, through the engine and through ``emconsole block`` in another
process. Both finish within the sum of their deadlines; every healthy server reads exactly as the lab
holds it; every faulty one fails with its own error class; nothing crashes; every change has one audit
intent and one result, and the lab's state agrees with the audited outcome, server by server.

A few servers go bad between the read and the change (their PowerShell-level faults switched on after
the refresh, as a server can fail at any moment): the block then fails cleanly (AD second hop, no
Exchange shell), or runs but its answer is lost (hang, garbage, truncated output), or meets another
admin's edit (the compare-and-set refuses). The audit must not claim more than the lab shows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from emconsole.backends.lab.exchange.builder import host_faults
from emconsole.backends.lab.exchange.org import HostFaults
from hostilekit import (
    assert_no_traceback,
    audited_changes,
    console_facts,
    lab_facts,
    run_cli,
    write_lab_config,
)

from emconsole.audit import AuditLog
from emconsole.cli.jsonout import ActionDoc
from emconsole.commandlog import CommandLog
from emconsole.engine import FleetEngine, ServerView
from emconsole.labconfig import Lab, lab_backend, lab_config, start_lab
from emconsole.models import ActionKind, ActionRequest, FailureKind, OutcomeStatus, is_blocked
from emconsole.serverfacts import ocs_reachable

SERVERS = 100
CALL_TIMEOUT = 5.0
CONCURRENCY = 8
READ = None  # expected: the server reads, exactly as the lab holds it

#: Every third server misbehaves: (lab fault spec, the error class its refresh must show).
FAULTS: list[tuple[str, FailureKind | None]] = [
    ("hang", FailureKind.TIMEOUT),
    ("refuse", FailureKind.UNREACHABLE),
    ("wrong-credentials", FailureKind.AUTH),
    ("tls=wrong-name", FailureKind.TLS),
    ("tls=expired", FailureKind.TLS),
    ("quota=0", FailureKind.QUOTA),
    ("http-error=503", FailureKind.OUTPUT_NOT_UNDERSTOOD),
    ("http-error=500", FailureKind.OUTPUT_NOT_UNDERSTOOD),
    ("reset", FailureKind.UNREACHABLE),
    ("ems-unavailable", FailureKind.EMS_NOT_LOADABLE),
    ("ad-second-hop", FailureKind.AD_SECOND_HOP),
    ("garbage", FailureKind.OUTPUT_NOT_UNDERSTOOD),
    ("truncate", FailureKind.OUTPUT_NOT_UNDERSTOOD),
    ("slow=inf", FailureKind.TIMEOUT),
    ("latency=100", READ),
    ("expire=3", READ),
    ("ocs-unreachable", READ),
    ("service-stopped", READ),
    ("service-disabled", READ),
    ("slow=1", READ),
    # mixed: the first fault the client meets decides
    ("hang;ems-unavailable", FailureKind.TIMEOUT),
    ("refuse;garbage", FailureKind.UNREACHABLE),
    ("wrong-credentials;slow=inf", FailureKind.AUTH),
    ("tls=expired;hang", FailureKind.TLS),
    ("reset;ems-unavailable", FailureKind.UNREACHABLE),
    ("http-error=502;ad-second-hop", FailureKind.OUTPUT_NOT_UNDERSTOOD),
    ("quota=1;truncate", FailureKind.OUTPUT_NOT_UNDERSTOOD),
    ("latency=50;garbage", FailureKind.OUTPUT_NOT_UNDERSTOOD),
    ("service-stopped;ad-second-hop", FailureKind.AD_SECOND_HOP),
    ("ems-unavailable;ocs-unreachable", FailureKind.EMS_NOT_LOADABLE),
    ("latency=100;ocs-unreachable", READ),
    ("expire=3;service-disabled", READ),
    ("slow=0.5;ocs-unreachable;service-stopped", READ),
]
FAULTY = {3 * (i + 1): spec for i, spec in enumerate(FAULTS)}  # 3, 6, ..., 99
#: Host faults switched on after the refresh, on servers that read fine: (faults, what the block meets).
LATE_FAULTS: dict[int, dict[str, str]] = {
    10: {"ad-second-hop": ""},
    20: {"ems-unavailable": ""},
    40: {"slow": "inf"},
    50: {"garbage": ""},
    70: {"truncate": ""},
}
LATE_KIND = {10: FailureKind.AD_SECOND_HOP, 20: FailureKind.EMS_NOT_LOADABLE, 40: FailureKind.TIMEOUT,
             50: FailureKind.OUTPUT_NOT_UNDERSTOOD, 70: FailureKind.OUTPUT_NOT_UNDERSTOOD}
#: Another admin edits this server's block list between the read and the change.
RACED = 80


@dataclass
class Fleet:
    lab: Lab

    def name(self, number: int) -> str:
        return self.lab.fleet.spec.server_name(number)

    def expected(self, number: int) -> FailureKind | None:
        spec = FAULTY.get(number)
        return spec[1] if spec else READ

    def faults_of(self, number: int) -> str:
        spec = FAULTY.get(number)
        return spec[0] if spec else ""


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    per_server = {n: {"faults": spec} for n, (spec, _) in FAULTY.items()}
    lab = start_lab(servers=SERVERS, scheme="https", seed=8, per_server=per_server)
    try:
        yield Fleet(lab)
    finally:
        lab.stop()


def deadline(steps: int, calls_per_step: int) -> float:
    """What the engine promises: each call ends within its deadline, ``CONCURRENCY`` at a time."""
    return math.ceil(steps / CONCURRENCY) * calls_per_step * CALL_TIMEOUT


def check_refreshed(fleet: Fleet, views: dict[str, ServerView]) -> None:
    """Healthy and readable-faulty servers equal the lab; the others show their error class."""
    assert len(views) == SERVERS
    for number in range(1, SERVERS + 1):
        name = fleet.name(number)
        view, kind = views[name], fleet.expected(number)
        where = f"{name} ({fleet.faults_of(number) or 'healthy'})"
        assert not view.loading and view.refreshed_at is not None, where
        if kind is READ:
            assert view.failure is None, (where, view.failure)
            assert view.state is not None
            assert console_facts(view.state) == lab_facts(fleet.lab.org.server(name)), where
            faults = fleet.faults_of(number)
            if "ocs-unreachable" in faults and "service-" not in faults:  # a stopped service never ran
                assert ocs_reachable(view.state) is False, where
            continue
        assert view.failure is not None and view.failure.kind is kind, (where, view.failure)
        assert view.state is None and view.failure.message, where
        if kind is FailureKind.TIMEOUT:  # cut at its own deadline, not held by the others
            assert view.failure.message.startswith("timed out after "), where
            took = float(view.failure.message.split()[3])
            assert took <= CALL_TIMEOUT + 1.0, (where, view.failure.message)


def lab_blocks_m2(fleet: Fleet, name: str) -> bool:
    blocked = fleet.lab.org.server(name).record.blocked
    return is_blocked("M2", blocked) and is_blocked("M2.1.0", blocked)


async def test_engine_refresh_then_bulk_block(fleet: Fleet, tmp_path: Path) -> None:
    lab = fleet.lab
    audit = AuditLog(tmp_path / "audit.jsonl")
    config = lab_config(lab.fleet, concurrency=CONCURRENCY, call_timeout=CALL_TIMEOUT)
    engine = FleetEngine(config, lab_backend(lab.fleet), audit=audit, command_log=CommandLog())
    try:
        started = time.monotonic()
        views = {v.name: v async for v in engine.refresh()}
        refresh_s = time.monotonic() - started
        check_refreshed(fleet, views)
        unread = {n for n, v in views.items() if v.state is None}
        assert refresh_s <= deadline(SERVERS, 1), refresh_s

        for number, faults in LATE_FAULTS.items():  # the server goes bad after it was read
            assert fleet.expected(number) is READ and not fleet.faults_of(number)
            lab.org.server(fleet.name(number)).faults = host_faults(faults)
        lab.org.server(fleet.name(RACED)).record.blocked.append("M1")  # another admin's edit
        before = {n: list(s.record.blocked) for n, s in lab.org.servers.items()}

        plan = engine.plan(ActionRequest(kind=ActionKind.BLOCK, servers=tuple(views), mitigation_ids=("M2",)))
        assert {s for s, _ in plan.skipped} == unread
        assert {s.server for s in plan.steps} == set(views) - unread
        started = time.monotonic()
        outcomes = {o.server: o async for o in engine.execute(plan)}
        block_s = time.monotonic() - started
        assert block_s <= deadline(len(plan.steps), 2), block_s  # the block, then its read-back
    finally:
        await engine.aclose()

    late = {fleet.name(n): k for n, k in LATE_KIND.items()}
    for name, outcome in outcomes.items():
        if name in late:
            assert outcome.failure is not None and outcome.failure.kind is late[name], (name, outcome)
            assert outcome.status is not OutcomeStatus.DONE, (name, outcome)
        elif name == fleet.name(RACED):
            assert outcome.status is OutcomeStatus.FAILED and "changed since it was read" in outcome.detail
            assert before[name] == lab.org.server(name).record.blocked  # the other admin's edit stands
        else:
            assert outcome.status is OutcomeStatus.DONE, (name, outcome)
    for number in (10, 20):  # failed before touching AD
        assert outcomes[fleet.name(number)].status is OutcomeStatus.FAILED
    check_audit_against_lab(fleet, tmp_path / "audit.jsonl", {s.server: s.script.sha256 for s in plan.steps},
                            {n: o.status.value for n, o in outcomes.items()}, before)
    assert lab.fleet.counters.snapshot()["host_errors"] == 0


def check_audit_against_lab(fleet: Fleet, path: Path, planned: dict[str, str], reported: dict[str, str],
                            before: dict[str, list[str]]) -> None:
    """One intent and one result per planned server (the exact script's hash), the result equal to
    what was reported, and the lab as the result says: done = blocked, failed = untouched."""
    changes = audited_changes(path)
    assert sorted(c.target for c in changes) == sorted(planned)
    for change in changes:
        name = change.target
        assert change.intent["action"] == "block" and change.intent["mitigation_ids"] == ["M2"]
        assert change.intent["script_sha256"] == planned[name]
        assert change.outcome == reported[name], (name, change.result)
        now = fleet.lab.org.server(name).record.blocked
        if change.outcome == "done":
            assert lab_blocks_m2(fleet, name), (name, now)
        elif change.outcome == "failed":
            assert now == before[name], (name, change.result, now)
        else:  # not verified: the audit admits it does not know, and says why
            assert change.outcome == "not_verified" and change.result and change.result["detail"], change
    for name, blocked in before.items():
        if name not in planned:
            assert fleet.lab.org.server(name).record.blocked == blocked, name


def test_headless_refresh_then_bulk_block(fleet: Fleet, tmp_path: Path) -> None:
    lab = fleet.lab
    for number in (*LATE_FAULTS, RACED):  # back to the lab's own shape: healthy, nothing blocked here
        server = lab.org.server(fleet.name(number))
        server.faults = HostFaults()
    for server in lab.org.servers.values():
        server.record.blocked = [b for b in server.record.blocked if b.split(".")[0] not in ("M1", "M2")]
    before = {n: list(s.record.blocked) for n, s in lab.org.servers.items()}
    audit = tmp_path / "audit.jsonl"
    config = write_lab_config(lab.fleet, tmp_path / "config.toml", audit, call_timeout=CALL_TIMEOUT,
                              concurrency=CONCURRENCY)
    unread = {fleet.name(n): kind for n in range(1, SERVERS + 1) if (kind := fleet.expected(n)) is not READ}

    started = time.monotonic()
    result = run_cli(lab.fleet, "block", "M2", "--all", "--yes", "--format", "json", "--config", str(config),
                     timeout=120)
    took = time.monotonic() - started
    assert_no_traceback(result)
    startup_s = 10.0  # a new Python process importing the console (generous on a loaded machine)
    assert took <= startup_s + deadline(SERVERS, 1) + deadline(SERVERS - len(unread), 2), took
    assert result.returncode == 1, result.stderr[-2000:]  # some servers could not be read
    doc = ActionDoc.model_validate_json(result.stdout)
    assert doc.executed and not doc.ok
    assert {s.server: s.error.kind if s.error else None for s in doc.skipped} == unread
    assert all(o.status is OutcomeStatus.DONE for o in doc.outcomes), [o for o in doc.outcomes if o.error]
    assert {o.server for o in doc.outcomes} == set(lab.org.servers) - set(unread)
    summary = result.stderr.rsplit("emconsole: not verified, failed or not read: ", 1)[1]
    assert set(summary.replace(",", " ").split()) == set(unread), summary
    check_audit_against_lab(fleet, audit, {s.server: s.script_sha256 for s in doc.steps},
                            {o.server: o.status.value for o in doc.outcomes}, before)
    assert lab.fleet.counters.snapshot()["host_errors"] == 0


def test_the_fault_table_covers_every_fault_the_lab_has() -> None:
    from emconsole.backends.lab.spec import TRANSPORT_FAULTS, host_faults

    used = {item.split("=")[0] for spec, _ in FAULTS for item in spec.split(";")}
    used |= {name for faults in LATE_FAULTS.values() for name in faults}
    assert used >= set(TRANSPORT_FAULTS) | set(host_faults())
    assert len(FAULTY) == SERVERS // 3
