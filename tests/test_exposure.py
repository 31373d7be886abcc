"""Exposure rules on hand-made snapshots: every state, every reason, the fix edge cases (a build
newer than the table, config naming the fix, sources disagreeing), leftovers and remedies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from emconsole.exposure import (
    Exposure,
    ExposureState,
    Reason,
    assess,
    assess_fleet,
    leftover_deletions,
    remedy,
    worst_first,
)
from emconsole.knowledge import BuildRecord, Knowledge, load_knowledge
from emconsole.models import (
    ActionKind,
    ActionScope,
    Artifact,
    ArtifactKind,
    Direction,
    EmEvent,
    FailureKind,
    Mitigation,
    MitigationKind,
    MitigationStatus,
    ServerFailure,
    ServerState,
    ServiceState,
)

M1_CVE, M2_CVE = "CVE-2022-41040", "CVE-2026-42897"
E19_CU15_FEB26 = "Version 15.2 (Build 1748.43)"
SE_FEB26, SE_JUL26 = "Version 15.2 (Build 2562.37)", "Version 15.2 (Build 2562.45)"
E16_CU23_OCT22 = "Version 15.1 (Build 2507.13)"
NOW = datetime(2026, 8, 3, 9, 0, tzinfo=timezone.utc)
OWA = "IIS:\\Sites\\Default Web Site\\owa"
M2_RULE = Artifact(kind=ArtifactKind.REWRITE_RULE, name="EEMS M2.1 OWA CSP - outbound", pspath=OWA,
                   filter="system.webServer/rewrite/outboundRules", direction=Direction.OUTBOUND)
M2_PRE = Artifact(kind=ArtifactKind.REWRITE_PRECONDITION, name="EEMS M2.1 OWA SPA HTML shell - precondition",
                  pspath=OWA, filter="system.webServer/rewrite/outboundRules/preConditions",
                  direction=Direction.OUTBOUND)
M1_RULE = Artifact(kind=ArtifactKind.REWRITE_RULE, name="EEMS M1.1 PowerShell - inbound",
                   pspath="IIS:\\Sites\\Default Web Site", filter="system.webServer/rewrite/rules",
                   direction=Direction.INBOUND)


@dataclass
class View:
    name: str
    state: ServerState | None
    failure: ServerFailure | None = None


def event(event_id: int, minutes_ago: int, record_id: int) -> EmEvent:
    return EmEvent(id=event_id, time=NOW - timedelta(minutes=minutes_ago), record_id=record_id)


def server(version: str = E19_CU15_FEB26, **fields: Any) -> View:
    fields.setdefault("org_enabled", True)
    fields.setdefault("server_enabled", True)
    fields.setdefault("service", ServiceState(status="Running", start_type="Automatic", process_id=10))
    fields.setdefault("events", (event(1005, 30, 1),))
    return View("EX01", ServerState(name="EX01", admin_display_version=version, read_time=NOW, **fields))


PROTECTED_M2: dict[str, Any] = {"applied": ("M2.1.0",), "artifacts": (M2_RULE, M2_PRE)}


@pytest.fixture(scope="module")
def knowledge() -> Knowledge:
    return load_knowledge()


def m2(view: View, knowledge: Knowledge) -> Exposure:
    return assess(view, M2_CVE, knowledge)


def test_protected_not_at_risk(knowledge: Knowledge) -> None:
    exp = m2(server(**PROTECTED_M2), knowledge)
    assert exp.state is ExposureState.PROTECTED and not exp.at_risk and exp.reasons == ()
    assert exp.artifacts_present == (M2_RULE.name, M2_PRE.name)
    assert "predates the fix" in exp.fix and exp.build == "15.2.1748.43"
    assert remedy(exp) is None


@pytest.mark.parametrize(
    ("fields", "code", "text"),
    [
        ({"org_enabled": False}, Reason.EM_OFF_ORG, "organisation"),
        ({"server_enabled": False}, Reason.EM_OFF_SERVER, "on this server"),
        ({"blocked": ("M2",)}, Reason.BLOCKED, "blocked (M2)"),
        ({"blocked": ("M2.1.0",)}, Reason.BLOCKED, "blocked (M2.1.0)"),
        ({"service": ServiceState(status="Stopped", start_type="Automatic")}, Reason.SERVICE_STOPPED,
         "stopped"),
        ({"service": None}, Reason.SERVICE_STOPPED, "not installed"),
        ({"events": (event(1005, 90, 1), event(1008, 30, 2))}, Reason.OCS_UNREACHABLE, "OCS"),
    ],
)
def test_protected_but_at_risk(knowledge: Knowledge, fields: dict[str, Any], code: Reason, text: str) -> None:
    exp = m2(server(**{**PROTECTED_M2, **fields}), knowledge)
    assert exp.state is ExposureState.PROTECTED and exp.at_risk
    assert exp.reason_codes == (code,) and text in exp.reasons[0].text


@pytest.mark.parametrize(
    ("fields", "codes"),
    [
        ({"org_enabled": False}, (Reason.EM_OFF_ORG,)),
        ({"org_enabled": False, "server_enabled": False}, (Reason.EM_OFF_ORG, Reason.EM_OFF_SERVER)),
        ({"server_enabled": False}, (Reason.EM_OFF_SERVER,)),
        ({"blocked": ("m2",)}, (Reason.BLOCKED,)),
        ({"service": ServiceState(status="Stopped", start_type="Disabled")}, (Reason.SERVICE_STOPPED,)),
        ({"events": (event(1008, 30, 1),)}, (Reason.OCS_UNREACHABLE,)),
        ({"mitigations": (Mitigation(id="M2.1.0", kind=MitigationKind.URL_REWRITE,
                                     status=MitigationStatus.FAILED),)}, (Reason.APPLY_FAILED,)),
        ({"applied": ("M2.1.0",)}, (Reason.ARTIFACT_MISSING,)),
        ({"applied": ("M2.1.0",), "artifacts": (M2_PRE,)}, (Reason.ARTIFACT_MISSING,)),
        ({}, (Reason.NOT_APPLIED_YET,)),
        ({"blocked": ("M2",), "applied": ("M2.1.0",)}, (Reason.BLOCKED, Reason.ARTIFACT_MISSING)),
    ],
)
def test_exposed_with_reasons(
    knowledge: Knowledge, fields: dict[str, Any], codes: tuple[Reason, ...]
) -> None:
    exp = m2(server(**fields), knowledge)
    assert exp.state is ExposureState.EXPOSED and not exp.at_risk
    assert exp.reason_codes == codes


def test_artifact_missing_names_what_is_missing(knowledge: Knowledge) -> None:
    exp = m2(server(applied=("M2.1.0",), artifacts=(M2_PRE,)), knowledge)
    assert M2_RULE.name in exp.reasons[0].text and M2_PRE.name not in exp.reasons[0].text


def test_apply_error_before_a_completed_check_is_not_ocs(knowledge: Knowledge) -> None:
    """One run logs the apply error (1008) and then its closing 1005 at the same time stamp."""
    same = NOW - timedelta(minutes=5)
    events = (EmEvent(id=1008, time=same, record_id=7), EmEvent(id=1005, time=same, record_id=8))
    assert m2(server(events=events), knowledge).reason_codes == (Reason.NOT_APPLIED_YET,)


def test_renamed_rule_of_a_later_sub_version_still_protects(knowledge: Knowledge) -> None:
    rule = M2_RULE.model_copy(update={"name": "EEMS M2.2 OWA CSP - outbound"})
    pre = M2_PRE.model_copy(update={"name": "EEMS M2.2 OWA SPA HTML shell - precondition"})
    assert m2(server(artifacts=(rule, pre)), knowledge).state is ExposureState.PROTECTED


def test_fixed_and_leftovers(knowledge: Knowledge) -> None:
    exp = m2(server(SE_JUL26, **PROTECTED_M2), knowledge)
    assert exp.state is ExposureState.FIXED and "at or above the fixing build 15.2.2562.45" in exp.fix
    assert [(lo.mitigation_id, lo.artifacts) for lo in exp.leftovers] == [("M2", (M2_RULE.name, M2_PRE.name))]
    clean = m2(server(SE_JUL26), knowledge)
    assert clean.state is ExposureState.FIXED and clean.leftovers == () and clean.summary.startswith("fixed")


def test_sources_disagree_the_later_fix_counts(knowledge: Knowledge) -> None:
    """SE Feb26SU (.37): Learn's June SU would fix it, EOMT says only .45: not fixed, and said so."""
    exp = m2(server(SE_FEB26), knowledge)
    assert exp.state is ExposureState.EXPOSED
    assert "below the fixing build 15.2.2562.45" in exp.fix and "Sources disagree" in exp.note
    # config naming an earlier fixing build: the catalogue's later one still counts, and the note says so
    k2 = load_knowledge([BuildRecord(build="15.2.2562.40", product="Exchange SE", cu="RTM", update="Jun26SU",
                                     fixes=(M2_CVE,))])
    exp2 = m2(server("Version 15.2 (Build 2562.40)", **PROTECTED_M2), k2)
    assert exp2.state is ExposureState.PROTECTED and "below the fixing build 15.2.2562.45" in exp2.fix
    assert "15.2.2562.40, 15.2.2562.45" in exp2.note and "later one (15.2.2562.45) counts" in exp2.note


def test_build_newer_than_the_table_is_unknown_until_config_names_the_fix(knowledge: Knowledge) -> None:
    newer = "Version 15.2 (Build 1748.50)"
    exp = m2(server(newer, **PROTECTED_M2), knowledge)
    assert exp.state is ExposureState.UNKNOWN and exp.reason_codes == (Reason.FIX_UNKNOWN,)
    assert "newer than every known build" in exp.reasons[0].text and "in place" in exp.reasons[0].text
    named = load_knowledge([BuildRecord(build="15.2.1748.48", product="Exchange 2019", cu="CU15",
                                        update="Jun26SU", fixes=(M2_CVE,))])
    assert m2(server(newer), named).state is ExposureState.FIXED
    assert m2(server("Version 15.2 (Build 1748.47)"), named).state is ExposureState.EXPOSED
    # a newer build only listed (no `fixes`) makes older ones "predate the fix": still not fixed
    listed = load_knowledge([BuildRecord(build="15.2.1748.50", product="Exchange 2019", cu="CU15",
                                         update="Jun26SU")])
    assert m2(server(newer), listed).state is ExposureState.EXPOSED


def test_unknown_build_and_unread_server(knowledge: Knowledge) -> None:
    exp = m2(server("Version 15.2 (Build 1900.5)"), knowledge)
    assert exp.state is ExposureState.UNKNOWN and exp.reason_codes == (Reason.UNKNOWN_BUILD,)
    assert m2(server(version=""), knowledge).reason_codes == (Reason.UNKNOWN_BUILD,)
    failure = ServerFailure(kind=FailureKind.TIMEOUT, message="timed out after 20 s")
    stale = server(**PROTECTED_M2)
    for view in (View("EX01", None), View("EX01", stale.state, failure)):
        exp = m2(view, knowledge)
        assert exp.state is ExposureState.UNKNOWN and exp.reason_codes == (Reason.NOT_READ,)
    assert "timed out" in m2(View("EX01", None, failure), knowledge).reasons[0].text


def test_m1_on_old_and_new_builds(knowledge: Knowledge) -> None:
    old = server(E16_CU23_OCT22, artifacts=(M1_RULE,), events=(event(1008, 20, 1),))
    exp = assess(old, M1_CVE, knowledge)
    assert exp.state is ExposureState.PROTECTED and exp.reason_codes == (Reason.OCS_UNREACHABLE,)
    fixed = assess(server(artifacts=(M1_RULE,)), M1_CVE, knowledge)
    assert fixed.state is ExposureState.FIXED and fixed.leftovers[0].mitigation_id == "M1"


def test_service_and_app_pool_mitigations_from_config() -> None:
    from emconsole.knowledge import CatalogueEntry

    entries = [
        CatalogueEntry.model_validate({
            "id": "X1", "kind": "service", "cve": "CVE-2026-10001",
            "artifacts": [{"kind": "service", "name": "MSExchangeImap4"}]}),
        CatalogueEntry.model_validate({
            "id": "X2", "kind": "app_pool", "cve": "CVE-2026-10002",
            "artifacts": [{"kind": "app_pool", "name": "MSExchangeOWACalendarAppPool"}]}),
    ]
    k = load_knowledge(extra_catalogue=entries)
    svc = Artifact(kind=ArtifactKind.SERVICE, name="MSExchangeImap4", service_status="Stopped",
                   start_type="Disabled")
    pool = Artifact(kind=ArtifactKind.APP_POOL, name="MSExchangeOWACalendarAppPool", app_pool_state="Stopped")
    done = server(artifacts=(svc, pool))
    assert assess(done, "CVE-2026-10001", k).state is ExposureState.PROTECTED
    assert assess(done, "CVE-2026-10002", k).state is ExposureState.PROTECTED
    assert "no update is known" in assess(done, "CVE-2026-10001", k).fix
    svc_on = svc.model_copy(update={"service_status": "Running", "start_type": "Automatic"})
    running = server(artifacts=(svc_on, pool.model_copy(update={"app_pool_state": "Started"})))
    assert assess(running, "CVE-2026-10001", k).state is ExposureState.EXPOSED
    assert assess(running, "CVE-2026-10002", k).state is ExposureState.EXPOSED


def test_fleet_order_remedies_and_leftover_deletions(knowledge: Knowledge) -> None:
    views = [
        View("EX01", server(**PROTECTED_M2).state),
        View("EX02", server(org_enabled=False).state),
        View("EX03", server(SE_JUL26, **PROTECTED_M2).state),
        View("EX04", server(**PROTECTED_M2, blocked=("M2",)).state),
        View("EX05", server(SE_JUL26, artifacts=(M1_RULE, M2_RULE)).state),
    ]
    exps = assess_fleet(views, knowledge, M2_CVE)
    assert [e.server for e in worst_first(exps)] == ["EX02", "EX03", "EX04", "EX05", "EX01"]
    fix = remedy(exps[1])
    assert fix is not None and fix.kind is ActionKind.ENABLE and fix.scope is ActionScope.ORG
    unblock = remedy(exps[3])
    assert unblock is not None and unblock.kind is ActionKind.UNBLOCK and unblock.mitigation_ids == ("M2",)
    reapply = remedy(m2(server(), knowledge))
    assert reapply is not None and reapply.kind is ActionKind.REAPPLY
    assert remedy(m2(server(**PROTECTED_M2, events=(event(1008, 1, 1),)), knowledge)) is None
    every = assess_fleet(views, knowledge)
    assert len(every) == 10
    deletions = {(r.mitigation_ids, r.servers) for r in leftover_deletions(every)}
    assert deletions == {(("M2",), ("EX03",)), (("M1", "M2"), ("EX05",))}
    with pytest.raises(KeyError):
        assess(views[0], "CVE-1999-0001", knowledge)


def test_drift_and_obsolete_ids(knowledge: Knowledge) -> None:
    from emconsole.serverfacts import drift, obsolete_ids

    applied_row = Mitigation(id="M2.1.0", kind=MitigationKind.URL_REWRITE, status=MitigationStatus.APPLIED)
    missing = server(applied=("M2.1.0",), mitigations=(applied_row,)).state
    unlisted = server(artifacts=(M2_RULE,)).state
    fixed = server(SE_JUL26, applied=("M2.1.0",), mitigations=(applied_row,), artifacts=(M2_RULE,)).state
    assert missing and unlisted and fixed
    assert [d.what for d in drift(missing)] == ["applied, but its rewrite rule is missing"]
    assert [d.what for d in drift(unlisted)] == [f"rule '{M2_RULE.name}' present but not listed as applied"]
    assert obsolete_ids(fixed, knowledge) == ["M2.1.0"] and obsolete_ids(missing, knowledge) == []
    assert [d.mitigation_id for d in drift(fixed, obsolete_ids(fixed, knowledge))] == ["M2.1.0"]
    assert drift(server(**PROTECTED_M2).state) == []  # type: ignore[arg-type]
