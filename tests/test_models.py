"""The domain model: ID rules, block matching, derived EM state, validation of action requests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from emconsole.models import (
    ActionKind,
    ActionRequest,
    ActionScope,
    Artifact,
    ArtifactKind,
    Direction,
    EmEvent,
    Mitigation,
    MitigationKind,
    MitigationStatus,
    ServerState,
    ServiceState,
    artifact_match_ids,
    base_id,
    block_matches,
    is_blocked,
    parse_mitigation_kind,
    parse_mitigation_status,
    same_base_id,
    same_reading,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("full", "base"),
    [("M2.1.0", "M2"), ("M1.1", "M1"), ("M01.3", "M01"), ("PING1", "PING1"), (" M2.1 ", "M2")],
)
def test_base_id(full: str, base: str) -> None:
    assert base_id(full) == base


@pytest.mark.parametrize(
    ("entry", "applied", "expected"),
    [
        ("M2", "M2.1.0", True),  # short entry covers every sub-version
        ("m2", "M2.1.0", True),  # case-insensitive
        ("M2.1.0", "M2.1.0", True),  # exact full ID
        ("M2.1.0", "m2.1.0", True),
        (" M2 ", "M2.1.0", True),  # stray spaces from a hand-edited list
        ("M2.1", "M2.1.0", False),  # partial sub-version is not a match
        ("M2.1.0", "M2.1.1", False),
        ("M2", "M21.1", False),  # a different mitigation that shares a prefix
        ("M1", "M01.3", False),  # M01 is not folded into M1
        ("M2", "M2", True),  # catalogue IDs are their own base
        ("PING1", "PING1", True),
        ("", "M2.1.0", False),
    ],
)
def test_block_matches(entry: str, applied: str, expected: bool) -> None:
    assert block_matches(entry, applied) is expected


@pytest.mark.parametrize(
    ("rule", "mitigation", "expected"),
    [
        ("EEMS M2.1 OWA CSP - outbound", "M2.1.0", True),  # the rule carries a shorter sub-version
        ("EEMS M2.1 OWA CSP - outbound", "M2", True),
        ("EEMS M2.1 OWA CSP - outbound", "m2.2.0", True),  # a rule is the mitigation's, whatever version
        ("EEMS M2 OWA - inbound", "M2.1.0", True),
        ("EEMS M21.1 x - inbound", "M2.1.0", False),  # another mitigation sharing a prefix
        ("EEMS M01.1 x - inbound", "M1", False),
        ("MyRule M2.1 x", "M2", False),  # not an EM rule
    ],
)
def test_artifacts_belong_to_their_mitigation_by_base_id(rule: str, mitigation: str, expected: bool) -> None:
    art = Artifact(kind=ArtifactKind.REWRITE_RULE, name=rule)
    assert art.belongs_to(mitigation) is expected
    assert (art.mitigation_id is not None and same_base_id(art.mitigation_id, mitigation)) is expected


def test_artifact_match_ids_are_each_base_once() -> None:
    assert artifact_match_ids(["M2.1.0", "m2", "M1.1", "PING1"]) == ("M2", "M1", "PING1")
    assert artifact_match_ids([]) == ()


def test_is_blocked_scans_the_whole_list() -> None:
    assert is_blocked("M2.1.0", ["M1", "M2"])
    assert not is_blocked("M2.1.0", ["M1", "M2.1"])
    assert not is_blocked("M2.1.0", [])


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("Applied", MitigationStatus.APPLIED),
        ("blocked", MitigationStatus.BLOCKED),
        ("Not Applicable", MitigationStatus.NOT_APPLICABLE),
        ("NotApplied", MitigationStatus.NOT_APPLIED),
        ("Failed", MitigationStatus.FAILED),
        ("Pending", MitigationStatus.PENDING),
        ("RolledBack", MitigationStatus.UNKNOWN),
        ("", MitigationStatus.UNKNOWN),
        (None, MitigationStatus.UNKNOWN),
    ],
)
def test_parse_status(raw: str | None, status: MitigationStatus) -> None:
    assert parse_mitigation_status(raw) is status


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("IIS", MitigationKind.URL_REWRITE),
        ("url-rewrite", MitigationKind.URL_REWRITE),
        ("Service", MitigationKind.SERVICE),
        ("App Pool", MitigationKind.APP_POOL),
        ("heartbeat", MitigationKind.HEARTBEAT),
        ("DoNothing", MitigationKind.HEARTBEAT),
        ("Registry", MitigationKind.UNKNOWN),
    ],
)
def test_parse_kind(raw: str, kind: MitigationKind) -> None:
    assert parse_mitigation_kind(raw) is kind


def _state(**kw: object) -> ServerState:
    return ServerState.model_validate({"name": "EX01", "read_time": NOW, **kw})


def test_same_reading_looks_past_the_read_time_only() -> None:
    state = _state(applied=("M1.1.0",), blocked=("M2",), org_enabled=True)
    later = _state(applied=("M1.1.0",), blocked=("M2",), org_enabled=True,
                   read_time=NOW + timedelta(minutes=5))
    assert state is not later and same_reading(state, later) and same_reading(later, state)
    assert not same_reading(state, _state(applied=("M1.1.0",), blocked=(), org_enabled=True))
    assert not same_reading(state, _state(applied=("M1.1.0",), blocked=("M2",), org_enabled=False))
    assert same_reading(None, None) and not same_reading(state, None) and not same_reading(None, state)


@pytest.mark.parametrize(
    ("org", "server", "enabled", "off"),
    [
        (True, True, True, ()),
        (True, False, False, (ActionScope.SERVER,)),
        (False, True, False, (ActionScope.ORG,)),
        (False, False, False, (ActionScope.ORG, ActionScope.SERVER)),
        (None, True, None, ()),
        (None, False, False, (ActionScope.SERVER,)),
    ],
)
def test_effective_em(org: bool | None, server: bool | None, enabled: bool | None, off: tuple) -> None:
    state = _state(org_enabled=org, server_enabled=server)
    assert state.em_enabled is enabled
    assert state.em_off_at == off


def test_server_state_round_trips_through_json_and_is_frozen() -> None:
    rule = Artifact(
        kind=ArtifactKind.REWRITE_RULE,
        name="EEMS M2.1 OWA CSP - outbound",
        pspath="IIS:\\Sites\\Default Web Site\\owa",
        filter="system.webServer/rewrite/outboundRules",
        direction=Direction.OUTBOUND,
    )
    state = _state(
        org_enabled=True,
        server_enabled=True,
        service=ServiceState(status="Running", start_type="Automatic", process_id=4242),
        applied=("M2.1.0",),
        blocked=("M1",),
        mitigations=(
            Mitigation(
                id="M2.1.0",
                kind=MitigationKind.URL_REWRITE,
                status=MitigationStatus.APPLIED,
                artifacts=(rule,),
            ),
        ),
        artifacts=(rule,),
        events=(
            EmEvent.model_validate(
                {"id": 1005, "time": "2026-03-01T11:00:00", "provider": "MSExchange Mitigation Service"}
            ),
        ),
    )
    again = ServerState.model_validate_json(state.model_dump_json())
    assert again == state
    assert again.mitigations[0].base_id == "M2"
    assert rule.mitigation_id == "M2.1"
    assert state.service is not None and state.service.healthy
    assert state.is_blocked("M1.1") and not state.is_blocked("M2.1.0")
    with pytest.raises(ValidationError):
        state.name = "EX02"


def test_times_are_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    event = EmEvent(id=1008, time=datetime(2026, 3, 1, 14, 0, tzinfo=plus_two))
    assert event.time == NOW and event.time.utcoffset() == timedelta(0)
    naive = EmEvent(id=1008, time=datetime(2026, 3, 1, 12, 0))
    assert naive.time == NOW


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        Mitigation.model_validate({"id": "M1", "colour": "red"})


@pytest.mark.parametrize(
    "kw",
    [
        {"kind": "block", "servers": ("EX01",)},  # no IDs
        {"kind": "block", "servers": (), "mitigation_ids": ("M1",)},  # no servers
        {"kind": "block", "servers": ("EX01",), "mitigation_ids": ("M1'; Stop-Service x",)},
        {"kind": "restore", "servers": ("EX01",)},  # no backup ID
        {"kind": "reapply", "servers": ("EX01",), "backup_id": "b1"},
        {"kind": "delete", "servers": ("EX01",), "mitigation_ids": ("M1",), "scope": "org"},
    ],
)
def test_impossible_action_requests_are_refused(kw: dict) -> None:
    with pytest.raises(ValidationError):
        ActionRequest.model_validate(kw)


def test_action_request_defaults() -> None:
    req = ActionRequest(kind=ActionKind.DELETE, servers=("EX01",), mitigation_ids=("M2",))
    assert req.also_block is True and req.scope is ActionScope.SERVER
    org = ActionRequest(kind=ActionKind.DISABLE, servers=("EX01",), scope=ActionScope.ORG)
    assert org.scope is ActionScope.ORG
