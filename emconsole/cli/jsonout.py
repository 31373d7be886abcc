"""The JSON documents of the headless commands: versioned, documented, validated.

Every document starts with ``"schema": "emconsole.<name>"`` and ``"schema_version"``; a change
that removes or renames a field, or changes a type, raises the version; adding a field does not.
These models *are* the schema: ``docs/json-schema.md`` describes them and ``docs/schema/*.json``
is generated from them (a test keeps the files in step), and consumers can validate against it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from emconsole.exposure import Exposure, ExposureState, Reason
from emconsole.knowledge import Knowledge
from emconsole.models import (
    Artifact,
    ArtifactKind,
    FailureKind,
    MitigationKind,
    MitigationStatus,
    OutcomeStatus,
    ServerFailure,
    ServerState,
)
from emconsole.monitoring import FindingCode
from emconsole.serverfacts import build_of, drift, obsolete_ids, ocs_reachable

SCHEMA_VERSION = 1


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class _Doc(_Out):
    schema_: str = Field(default="", alias="schema")  # each document narrows it to its own name
    schema_version: Literal[1] = 1
    generated: datetime = Field(default_factory=_now)


# --------------------------------------------------------------------------- servers


class ErrorOut(_Out):
    kind: FailureKind
    message: str


def error_out(failure: ServerFailure | None) -> ErrorOut | None:
    """A failure as every document shows it: its kind and message, nothing when there is none."""
    return None if failure is None else ErrorOut(kind=failure.kind, message=failure.message)


class EmOut(_Out):
    org_enabled: bool | None
    server_enabled: bool | None
    effective: bool | None
    off_at: list[Literal["org", "server"]]


class ServiceOut(_Out):
    status: str
    start_type: str
    process_id: int | None


class ArtifactOut(_Out):
    kind: ArtifactKind
    name: str
    mitigation_id: str | None
    pspath: str | None = None
    direction: str | None = None
    state: str | None = None


class MitigationOut(_Out):
    id: str
    kind: MitigationKind
    status: MitigationStatus
    raw_status: str | None
    description: str
    blocked: bool


class DriftOut(_Out):
    mitigation_id: str
    what: str


class EventOut(_Out):
    id: int
    time: datetime
    level: str
    message: str


class ServerOut(_Out):
    name: str
    host: str
    tags: dict[str, str]
    reachable: bool
    error: ErrorOut | None
    refreshed_at: datetime | None
    read_time: datetime | None
    fqdn: str | None
    build: str | None
    build_name: str | None
    em: EmOut | None
    service: ServiceOut | None
    ocs_reachable: bool | None
    applied: list[str]
    blocked: list[str]
    mitigations: list[MitigationOut]
    artifacts: list[ArtifactOut]
    drift: list[DriftOut]
    backups: list[str]
    pending_check: list[str]
    events: list[EventOut] | None = None


def _artifact(a: Artifact) -> ArtifactOut:
    state = a.app_pool_state if a.kind.value == "app_pool" else (
        f"{a.service_status}/{a.start_type}" if a.kind.value == "service" else None)
    return ArtifactOut(kind=a.kind, name=a.name, mitigation_id=a.mitigation_id, pspath=a.pspath,
                       direction=a.direction.value if a.direction else None, state=state)


def server_out(view: Any, knowledge: Knowledge, *, events: int | None = None) -> ServerOut:
    """One server as the status and report documents show it (``events``: include that many)."""
    state: ServerState | None = view.state
    failure = view.failure
    common: dict[str, Any] = {
        "name": view.name, "host": view.config.host, "tags": dict(view.config.tags),
        "reachable": failure is None and state is not None,
        "error": error_out(failure),
        "refreshed_at": view.refreshed_at, "pending_check": list(getattr(view, "pending_check", ())),
    }
    if state is None:
        return ServerOut(**common, read_time=None, fqdn=None, build=None, build_name=None, em=None,
                         service=None, ocs_reachable=None, applied=[], blocked=[], mitigations=[],
                         artifacts=[], drift=[], backups=[], events=None if events is None else [])
    build = build_of(state)
    svc = state.service
    newest = sorted(state.events, key=lambda e: (e.time, e.record_id or 0), reverse=True)
    return ServerOut(
        **common, read_time=state.read_time, fqdn=state.fqdn, build=build,
        build_name=knowledge.build_info(build).name if build else None,
        em=EmOut(org_enabled=state.org_enabled, server_enabled=state.server_enabled,
                 effective=state.em_enabled, off_at=[s.value for s in state.em_off_at]),
        service=None if svc is None else ServiceOut(status=svc.status, start_type=svc.start_type,
                                                    process_id=svc.process_id),
        ocs_reachable=ocs_reachable(state), applied=list(state.applied), blocked=list(state.blocked),
        mitigations=[MitigationOut(id=m.id, kind=m.kind, status=m.status, raw_status=m.raw_status,
                                   description=m.description, blocked=state.is_blocked(m.id))
                     for m in state.mitigations],
        artifacts=[_artifact(a) for a in state.artifacts],
        drift=[DriftOut(mitigation_id=d.mitigation_id, what=d.what)
               for d in drift(state, obsolete_ids(state, knowledge))],
        backups=[b.id for b in state.backups],
        events=None if events is None else [EventOut(id=e.id, time=e.time, level=e.level, message=e.message)
                                            for e in newest[:events]],
    )


class StatusDoc(_Doc):
    schema_: Literal["emconsole.status"] = Field(default="emconsole.status", alias="schema")
    servers: list[ServerOut]


# --------------------------------------------------------------------------- exposure


class ReasonOut(_Out):
    code: Reason
    text: str


class LeftoverOut(_Out):
    mitigation_id: str
    artifacts: list[str]


class ExposureOut(_Out):
    server: str
    cve: str
    mitigation_ids: list[str]
    state: ExposureState
    at_risk: bool
    reasons: list[ReasonOut]
    fix: str
    note: str
    build: str | None
    build_name: str | None
    artifacts_present: list[str]
    leftovers: list[LeftoverOut]


def exposure_out(e: Exposure) -> ExposureOut:
    return ExposureOut(
        server=e.server, cve=e.cve, mitigation_ids=list(e.mitigation_ids), state=e.state,
        at_risk=e.at_risk, reasons=[ReasonOut(code=r.code, text=r.text) for r in e.reasons],
        fix=e.fix, note=e.note, build=e.build, build_name=e.build_name,
        artifacts_present=list(e.artifacts_present),
        leftovers=[LeftoverOut(mitigation_id=lo.mitigation_id, artifacts=list(lo.artifacts))
                   for lo in e.leftovers])


class ExposureDoc(_Doc):
    schema_: Literal["emconsole.exposure"] = Field(default="emconsole.exposure", alias="schema")
    exposures: list[ExposureOut]


# --------------------------------------------------------------------------- check


class FindingOut(_Out):
    server: str
    code: FindingCode
    level: Literal["critical", "warning", "unknown"]
    text: str
    cve: str | None
    mitigation_id: str | None


class CheckDoc(_Doc):
    schema_: Literal["emconsole.check"] = Field(default="emconsole.check", alias="schema")
    status: Literal["OK", "WARNING", "CRITICAL", "UNKNOWN"]
    exit_code: Literal[0, 1, 2, 3]
    summary: str
    perfdata: str
    servers: int
    findings: list[FindingOut]


# --------------------------------------------------------------------------- actions


class StepOut(_Out):
    server: str
    summary: str
    script: str | None = None
    script_sha256: str


class SkippedOut(_Out):
    server: str
    reason: str
    #: why the server could not be read, when that is why it was skipped
    error: ErrorOut | None = None


class OutcomeOut(_Out):
    server: str
    status: OutcomeStatus
    detail: str
    duration_s: float
    backup_id: str | None
    error: ErrorOut | None


class ActionDoc(_Doc):
    schema_: Literal["emconsole.action"] = Field(default="emconsole.action", alias="schema")
    action: str
    scope: Literal["server", "org"]
    mitigation_ids: list[str]
    backup_id: str | None
    dry_run: bool
    executed: bool
    steps: list[StepOut]
    skipped: list[SkippedOut]
    outcomes: list[OutcomeOut]
    ok: bool


class OcsOut(_Out):
    server: str
    reachable: bool | None
    message: str
    error: ErrorOut | None


class OcsDoc(_Doc):
    schema_: Literal["emconsole.test-ocs"] = Field(default="emconsole.test-ocs", alias="schema")
    results: list[OcsOut]


# --------------------------------------------------------------------------- audit and report


class AuditEntryOut(_Out):
    id: str
    time: str
    operator: str
    target: str
    action: str
    mitigation_ids: list[str]
    outcome: str
    finished: str | None
    duration_s: float | None
    detail: str
    summary: str
    backups: list[str]


class AuditDoc(_Doc):
    schema_: Literal["emconsole.audit"] = Field(default="emconsole.audit", alias="schema")
    since: datetime | None
    path: str
    entries: list[AuditEntryOut]
    unknown_outcomes: int


class ReportDoc(_Doc):
    schema_: Literal["emconsole.report"] = Field(default="emconsole.report", alias="schema")
    since: datetime | None
    servers: list[ServerOut]
    exposures: list[ExposureOut]
    audit: list[AuditEntryOut]


class DiscoveredOut(_Out):
    name: str
    fqdn: str
    build: str | None
    build_name: str | None
    site: str
    roles: str
    in_config: bool


class DiscoverDoc(_Doc):
    schema_: Literal["emconsole.discover"] = Field(default="emconsole.discover", alias="schema")
    seed: str
    servers: list[DiscoveredOut]
    config: str


#: Every document, by its schema name (docs/schema/<name>.schema.json).
DOCUMENTS: dict[str, type[_Doc]] = {
    "emconsole.status": StatusDoc,
    "emconsole.exposure": ExposureDoc,
    "emconsole.check": CheckDoc,
    "emconsole.action": ActionDoc,
    "emconsole.test-ocs": OcsDoc,
    "emconsole.audit": AuditDoc,
    "emconsole.report": ReportDoc,
    "emconsole.discover": DiscoverDoc,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every document (what ``docs/schema/<name>.schema.json`` holds)."""
    out = {}
    for name, model in DOCUMENTS.items():
        schema = model.model_json_schema(by_alias=True, mode="serialization")
        schema["$id"] = f"https://emconsole.invalid/schema/{name}/{SCHEMA_VERSION}"
        out[name] = schema
    return out


def write_schemas(folder: str) -> None:
    """Regenerate ``docs/schema``: ``python -m emconsole.cli.jsonout docs/schema``."""
    import json
    from pathlib import Path

    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        (target / f"{name}.schema.json").write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n",
                                                    encoding="utf-8")


if __name__ == "__main__":
    import sys

    write_schemas(sys.argv[1] if len(sys.argv) > 1 else "docs/schema")
