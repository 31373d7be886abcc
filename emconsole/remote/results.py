"""From script documents to the domain model: server state, failures and verified action outcomes.

The verification rules of DESIGN.md ("Changes and their verification") live here, in one place:
a change is DONE only when its own read-back confirms it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

from emconsole.models import (
    ActionKind,
    ActionOutcome,
    Artifact,
    ArtifactKind,
    Backup,
    Direction,
    EmEvent,
    FailureKind,
    Mitigation,
    OutcomeStatus,
    ServerFailure,
    ServerState,
    ServiceState,
    parse_mitigation_kind,
    parse_mitigation_status,
)
from emconsole.remote.documents import (
    BlockDocument,
    DeleteDocument,
    Envelope,
    OcsDocument,
    ReapplyDocument,
    RestoreDocument,
    RewriteDoc,
    StatusDocument,
    SwitchDocument,
)
from emconsole.remote.scripts import EM_SERVICE

if TYPE_CHECKING:
    from emconsole.knowledge import Catalogue

_AD_MARKERS = ("ADOperation", "ADTransient", "ADServerSettings")
_FAILURE_TEXT = {
    FailureKind.IDENTITY_MISMATCH: "the server answering is not the one configured",
    FailureKind.EMS_NOT_LOADABLE: "the Exchange Management Shell could not be loaded",
    FailureKind.AD_SECOND_HOP: (
        "Exchange cmdlets could not reach Active Directory (no credentials for the "
        "second hop): use CredSSP over HTTPS, or Kerberos with delegation"
    ),
    FailureKind.POWERSHELL: "a PowerShell command failed",
}


def failure_kind(doc: Envelope) -> FailureKind | None:
    """The taxonomy class of a document's code; classified by error ID / exception type, never by text."""
    if not doc.code:
        return None
    if doc.code == "identity_mismatch":
        return FailureKind.IDENTITY_MISMATCH
    if doc.code == "ad_second_hop" or any(m in doc.error_id or m in doc.error_type for m in _AD_MARKERS):
        return FailureKind.AD_SECOND_HOP
    if doc.code == "ems_not_loadable":
        return FailureKind.EMS_NOT_LOADABLE
    return FailureKind.POWERSHELL


def failure(doc: Envelope) -> ServerFailure | None:
    """A ``ServerFailure`` for a document whose script could not do its job, else None."""
    kind = failure_kind(doc)
    if kind is None:
        return None
    first = doc.error.strip().splitlines()[0] if doc.error.strip() else doc.code
    return ServerFailure(
        kind=kind,
        message=f"{_FAILURE_TEXT.get(kind, doc.code)}: {first}",
        detail=f"code={doc.code} error_id={doc.error_id} error_type={doc.error_type}",
    )


def _time(text: str) -> datetime | None:
    if not text:
        return None
    value = text.strip().replace("Z", "+00:00")
    head, dot, frac = value.partition(".")
    if dot:  # .NET 'o' has 7 fractional digits; Python takes at most 6
        digits = "".join(c for c in frac if c.isdigit())
        value = f"{head}.{digits[:6]}{frac[len(digits) :]}"
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def artifact(rule: RewriteDoc) -> Artifact:
    kind = ArtifactKind.REWRITE_PRECONDITION if rule.kind == "precondition" else ArtifactKind.REWRITE_RULE
    direction = Direction.INBOUND if rule.direction == "inbound" else Direction.OUTBOUND
    return Artifact(kind=kind, name=rule.name, pspath=rule.pspath, filter=rule.filter, direction=direction)


def server_state(doc: StatusDocument, identity: str, catalogue: Catalogue | None = None) -> ServerState:
    """The snapshot a status document describes (fields the script could not read stay None).

    Each mitigation gets its artifacts: its ``EEMS <ID>`` rules, and with ``catalogue`` also the
    services and app pools its entry names (``Catalogue.artifacts_of``).
    """
    res = doc.result
    read_time = _time(doc.time) or datetime.now(timezone.utc)
    if res is None:
        return ServerState(name=identity, read_time=read_time)
    artifacts = [artifact(r) for r in res.artifacts]
    for svc in res.services:
        if svc.present and svc.name.casefold() != EM_SERVICE.casefold():
            artifacts.append(
                Artifact(
                    kind=ArtifactKind.SERVICE,
                    name=svc.name,
                    service_status=svc.state,
                    start_type=svc.start_mode,
                )
            )
    artifacts += [
        Artifact(kind=ArtifactKind.APP_POOL, name=p.name, app_pool_state=p.state)
        for p in res.app_pools
        if p.present
    ]
    em = next((s for s in res.services if s.name.casefold() == EM_SERVICE.casefold() and s.present), None)
    mitigations = []
    for row in res.mitigations:
        mine = (catalogue.artifacts_of(row.id, artifacts) if catalogue is not None
                else tuple(a for a in artifacts if a.belongs_to(row.id)))
        mitigations.append(
            Mitigation(
                id=row.id,
                kind=parse_mitigation_kind(row.type),
                description=row.description,
                status=parse_mitigation_status(row.status),
                raw_status=row.status,
                artifacts=mine,
            )
        )
    events = [
        EmEvent(id=e.id, time=t, level=e.level, provider=e.provider, message=e.message, record_id=e.record_id)
        for e in res.events
        if (t := _time(e.time)) is not None
    ]
    backups = [Backup(id=b.name.removesuffix(".json"), created=_time(b.modified)) for b in res.backups]
    srv = res.server
    return ServerState(
        name=identity,
        read_time=read_time,
        org_enabled=res.org_enabled,
        fqdn=srv.fqdn or None if srv else None,
        admin_display_version=srv.version or None if srv else None,
        server_enabled=srv.enabled if srv else None,
        applied=tuple(srv.applied) if srv else (),
        blocked=tuple(srv.blocked) if srv else (),
        applied_time=_time(srv.applied_time) if srv else None,
        data_collection=srv.data_collection if srv else None,
        proxy=srv.proxy or None if srv else None,
        service=ServiceState(
            status=em.state, start_type=_start_type(em.start_mode), process_id=em.process_id or None
        )
        if em
        else None,
        mitigations=tuple(mitigations),
        artifacts=tuple(artifacts),
        events=tuple(events),
        backups=tuple(backups),
    )


def _start_type(start_mode: str) -> str:
    """Win32_Service says ``Auto``; the rest of the console speaks Get-Service's ``Automatic``."""
    return "Automatic" if start_mode.casefold() == "auto" else start_mode


def outcome(doc: Envelope, server: str, kind: ActionKind) -> ActionOutcome:
    """DONE only on the script's own read-back; NOT_VERIFIED when it ran but could not confirm."""
    fail = failure(doc)
    if fail is not None:
        status = OutcomeStatus.FAILED
        detail = (
            "MitigationsBlocked changed since it was read; refresh and retry"
            if doc.code == "changed_since_read"
            else fail.message
        )
        backup = None
        if (
            isinstance(doc, DeleteDocument)
            and doc.result
            and doc.result.backup
            and doc.code != "backup_exists"
        ):
            backup = doc.result.backup.model_dump()
        return ActionOutcome(
            server=server, kind=kind, status=status, detail=detail, failure=fail, backup=backup
        )
    ok, detail, backup = _verify(doc)
    if (
        isinstance(doc, OcsDocument)
        and doc.result
        and doc.result.field("Result").casefold().startswith("fail")
    ):
        return ActionOutcome(server=server, kind=kind, status=OutcomeStatus.FAILED, detail=detail)
    problems = "; ".join(f"{p.step}: {p.message}" for p in doc.problems)
    if problems:
        ok, detail = False, f"{detail}; {problems}" if detail else problems
    return ActionOutcome(
        server=server,
        kind=kind,
        status=OutcomeStatus.DONE if ok else OutcomeStatus.NOT_VERIFIED,
        detail=detail,
        backup=backup,
    )


def _verify(doc: Envelope) -> tuple[bool, str, dict[str, object] | None]:
    if isinstance(doc, BlockDocument) and doc.result:
        r0 = doc.result
        return (
            r0.verified,
            f"MitigationsBlocked now {r0.after}"
            if r0.verified
            else f"read back {r0.after}, wanted {r0.wanted} (AD may lag: refresh later)",
            None,
        )
    if isinstance(doc, ReapplyDocument) and doc.result:
        r1 = doc.result
        ok = (
            r1.state.casefold() == "running"
            and bool(r1.new_process_id)
            and r1.new_process_id != r1.old_process_id
        )
        return (
            ok,
            f"{r1.service} {r1.state}, process {r1.old_process_id} -> {r1.new_process_id}; "
            "mitigations pending the next EM check",
            None,
        )
    if isinstance(doc, DeleteDocument) and doc.result:
        r2 = doc.result
        block_ok = r2.blocking is None or r2.blocking.mode == "" or r2.blocking.verified
        ok = not r2.remaining and block_ok
        detail = f"backup {r2.backup_id}; removed {r2.removed}"
        if r2.remaining:
            detail += f"; still present {r2.remaining}"
        if not block_ok:
            detail += "; block not confirmed"
        return ok, detail, r2.backup.model_dump() if r2.backup else None
    if isinstance(doc, RestoreDocument) and doc.result:
        r3 = doc.result
        return (
            not r3.missing,
            f"restored {r3.restored}, already present {r3.already_present}"
            + (f", missing {r3.missing}" if r3.missing else ""),
            None,
        )
    if isinstance(doc, SwitchDocument) and doc.result:
        r4 = doc.result
        return r4.verified, f"MitigationsEnabled ({r4.scope}) {r4.before} -> {r4.after}", None
    if isinstance(doc, OcsDocument) and doc.result:
        result = doc.result.field("Result")
        message = doc.result.field("Message")
        return result.casefold().startswith("success"), f"Result: {result} Message: {message}".strip(), None
    return False, "the document has no result", None
