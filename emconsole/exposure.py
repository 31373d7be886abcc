"""Exposure: for each server and each CVE in the catalogue, is the server fixed, protected by its
mitigation, exposed, or is that unknown — and why. Leftovers: mitigations still on fixed servers.

The rules (issue #9), decided here only and shared by the console and the headless commands:
- **fixed**: the build is at or above the fixing update for its CU (``emconsole.knowledge.fixes``
  decides, the later fix counting where sources disagree). A mitigation with no fix published at
  all is "not fixed" (its CVE has no update yet).
- **protected**: not fixed, and every artifact the catalogue lists for the CVE's mitigation is in
  place in its mitigated state. Blocking or switching EM off does not remove artifacts, so such a
  mitigation still protects, but is **at risk** when EM would not put a lost artifact back
  (blocked, EM off at org or server, service not running, OCS unreachable).
- **exposed**: not fixed and not protected, with every reason that applies, the most basic first.
- **unknown**: the server could not be read, its build is not in the table, or the build is
  newer than every build the table knows for its CU while that CU's fixing build is not known.
- **leftover**: an artifact of the CVE's mitigation still present on a fixed server.

Pure: no I/O, no engine; input is what the engine's ``ServerView`` holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import Enum
from typing import Protocol

from pydantic import BaseModel, ConfigDict, computed_field

from emconsole.knowledge import CatalogueArtifact, CatalogueEntry, FixStatus, Knowledge, parse_build
from emconsole.models import (
    ActionKind,
    ActionRequest,
    ActionScope,
    Artifact,
    ArtifactKind,
    MitigationStatus,
    ServerFailure,
    ServerState,
    block_matches,
)
from emconsole.serverfacts import all_artifacts, build_of, ids_matching, ocs_reachable, same_mitigation


class ExposureState(str, Enum):
    FIXED = "fixed"
    PROTECTED = "protected"
    EXPOSED = "exposed"
    UNKNOWN = "unknown"


class Reason(str, Enum):
    """Why a server is exposed, at risk, or unknown. The order here is the order reasons are listed."""

    EM_OFF_ORG = "em_off_org"
    EM_OFF_SERVER = "em_off_server"
    BLOCKED = "blocked"
    SERVICE_STOPPED = "service_stopped"
    OCS_UNREACHABLE = "ocs_unreachable"
    APPLY_FAILED = "apply_failed"
    ARTIFACT_MISSING = "artifact_missing"
    NOT_APPLIED_YET = "not_applied_yet"
    NOT_READ = "not_read"
    UNKNOWN_BUILD = "unknown_build"
    FIX_UNKNOWN = "fix_unknown"


_ORDER = {r: i for i, r in enumerate(Reason)}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReasonItem(_Frozen):
    """One reason: a stable code for scripts and a sentence for people."""

    code: Reason
    text: str


class Leftover(_Frozen):
    """A mitigation's artifacts still on a fixed server: offered for deletion (with backup)."""

    mitigation_id: str
    artifacts: tuple[str, ...]


class Exposure(_Frozen):
    """One server × one CVE."""

    server: str
    cve: str
    mitigation_ids: tuple[str, ...]
    state: ExposureState
    reasons: tuple[ReasonItem, ...] = ()
    fix: str = ""
    note: str = ""
    build: str | None = None
    build_name: str | None = None
    artifacts_present: tuple[str, ...] = ()
    leftovers: tuple[Leftover, ...] = ()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def at_risk(self) -> bool:
        """Protected now, but EM would not put the artifact back if it went."""
        return self.state is ExposureState.PROTECTED and bool(self.reasons)

    @property
    def reason_codes(self) -> tuple[Reason, ...]:
        return tuple(r.code for r in self.reasons)

    @property
    def label(self) -> str:
        """The state as people read it: ``protected, at risk`` and ``fixed, leftovers`` spelled out."""
        if self.at_risk:
            return "protected, at risk"
        if self.state is ExposureState.FIXED and self.leftovers:
            return "fixed, leftovers"
        return self.state.value

    @property
    def why(self) -> str:
        """Every reason (or the leftovers, or the fix verdict) in one line, for tables."""
        if self.leftovers:
            return "; ".join(f"{lo.mitigation_id}: {', '.join(lo.artifacts)}" for lo in self.leftovers)
        return "; ".join(r.text for r in self.reasons) or self.fix

    @property
    def summary(self) -> str:
        """``exposed: EM is off at the organisation`` — state and the first reason."""
        first = self.reasons[0].text if self.reasons else self.fix
        return f"{self.label}: {first}" if first else self.label


class ViewLike(Protocol):
    """What exposure needs of the engine's ``ServerView`` (read-only)."""

    @property
    def name(self) -> str: ...

    @property
    def state(self) -> ServerState | None: ...

    @property
    def failure(self) -> ServerFailure | None: ...


# --------------------------------------------------------------------------- artifacts


def _present(want: CatalogueArtifact, entry: CatalogueEntry, found: Sequence[Artifact]) -> Artifact | None:
    """The server artifact that fulfils one catalogue artifact, if any.

    Rewrite rules: the exact name, else any rule of the same kind and direction whose ``EEMS <ID>``
    is the same mitigation (a later sub-version renames the rule). Services: present, stopped and
    disabled. App pools: present and stopped.
    """
    same_kind = [a for a in found if a.kind is want.kind]
    if want.kind in (ArtifactKind.REWRITE_RULE, ArtifactKind.REWRITE_PRECONDITION):
        exact = [a for a in same_kind if a.name.casefold() == want.name.casefold()]
        if exact:
            return exact[0]
        return next(
            (a for a in same_kind if a.direction == want.direction and a.mitigation_id
             and same_mitigation(a.mitigation_id, entry.id)),
            None,
        )
    named = next((a for a in same_kind if a.name.casefold() == want.name.casefold()), None)
    if named is None:
        return None
    if want.kind is ArtifactKind.SERVICE:
        stopped = (named.service_status or "").casefold() == "stopped"
        disabled = (named.start_type or "").casefold() == "disabled"
        return named if stopped and disabled else None
    return named if (named.app_pool_state or "").casefold() == "stopped" else None


def _entry_artifacts(entry: CatalogueEntry, found: Sequence[Artifact]) -> tuple[list[Artifact], list[str]]:
    """(present artifacts, names of missing ones) for one entry. An entry whose artifacts the
    catalogue does not describe counts any ``EEMS <ID>`` rule of its own as present."""
    if not entry.artifacts:
        own = [a for a in found if a.mitigation_id and same_mitigation(a.mitigation_id, entry.id)]
        return own, ([] if own else [f"any EEMS {entry.id} rule"])
    present, missing = [], []
    for want in entry.artifacts:
        got = _present(want, entry, found)
        if got is None:
            missing.append(want.name)
        else:
            present.append(got)
    return present, missing


# --------------------------------------------------------------------------- reasons


def _blocked_ids(state: ServerState, entries: Sequence[CatalogueEntry]) -> list[str]:
    """Block-list entries that cover one of the CVE's mitigations in any of its forms."""
    forms: list[str] = []
    for entry in entries:
        forms += [entry.id, *entry.applied_ids_seen]
        forms += ids_matching((*state.applied, *(m.id for m in state.mitigations)), entry.id)
    return [b for b in state.blocked if any(block_matches(b, f) for f in forms)]


def _em_reasons(state: ServerState, entries: Sequence[CatalogueEntry]) -> list[ReasonItem]:
    """Why EM would not (re)apply the mitigation now: the at-risk reasons."""
    out: list[ReasonItem] = []
    if state.org_enabled is False:
        out.append(ReasonItem(code=Reason.EM_OFF_ORG, text="EM is off for the organisation"))
    if state.server_enabled is False:
        out.append(ReasonItem(code=Reason.EM_OFF_SERVER, text="EM is off on this server"))
    blocked = _blocked_ids(state, entries)
    if blocked:
        out.append(ReasonItem(code=Reason.BLOCKED, text=f"blocked ({', '.join(blocked)})"))
    svc = state.service
    if svc is None:
        out.append(ReasonItem(code=Reason.SERVICE_STOPPED, text="the EM service is not installed"))
    elif svc.status.casefold() != "running":
        out.append(ReasonItem(code=Reason.SERVICE_STOPPED,
                              text=f"the EM service is {svc.status.lower()} (start type {svc.start_type})"))
    if ocs_reachable(state) is False:
        out.append(ReasonItem(code=Reason.OCS_UNREACHABLE,
                              text="the EM service's last check could not reach OCS (event 1008)"))
    return out


def _why_exposed(
    state: ServerState, entries: Sequence[CatalogueEntry], missing: list[str]
) -> list[ReasonItem]:
    out = _em_reasons(state, entries)
    failed = [m.id for m in state.mitigations if m.status is MitigationStatus.FAILED
              and any(same_mitigation(m.id, e.id) for e in entries)]
    if failed:
        out.append(ReasonItem(code=Reason.APPLY_FAILED, text=f"EM failed to apply {', '.join(failed)}"))
    listed = [i for e in entries for i in ids_matching(state.applied, e.id)]
    if listed:
        out.append(ReasonItem(code=Reason.ARTIFACT_MISSING,
                              text=f"{', '.join(listed)} is listed as applied, but {', '.join(missing)} "
                                   "is missing"))
    if not out:
        text = "not applied yet: EM is on and healthy, expect it at its next hourly check"
        out.append(ReasonItem(code=Reason.NOT_APPLIED_YET, text=text))
    return sorted(out, key=lambda r: _ORDER[r.code])


# --------------------------------------------------------------------------- fix


def _fix_note(entry: CatalogueEntry, cu: str | None, knowledge: Knowledge) -> str:
    """The catalogue's note on the fix, plus a line when config names a different fixing build."""
    note = entry.fix.note if entry.fix else ""
    if cu is None or entry.fix is None:
        return note
    names = {entry.id.casefold(), *(c.casefold() for c in (entry.cve,) if c)}
    ours = [r.build for r in knowledge.builds.of_cu(cu) if any(f.casefold() in names for f in r.fixes)]
    listed = next((b for c, b in entry.fix.builds.items() if c.casefold() == cu.casefold()), None)
    sources = sorted({b for b in (*ours, *([listed] if listed else []))},
                     key=lambda b: parse_build(b) or (0, 0, 0, 0))
    if len(sources) > 1:
        extra = (f"Sources disagree on the fixing build of {cu}: {', '.join(sources)}; "
                 f"the later one ({sources[-1]}) counts.")
        note = f"{note} {extra}".strip()
    return note


# --------------------------------------------------------------------------- assess


def cves(knowledge: Knowledge) -> tuple[str, ...]:
    """Every CVE the catalogue (with config extras) knows, in catalogue order."""
    return knowledge.catalogue.cves()


def _not_read(view: ViewLike, cve: str, ids: tuple[str, ...]) -> Exposure:
    why = view.failure.message if view.failure is not None else "not read yet"
    reason = ReasonItem(code=Reason.NOT_READ, text=f"the server could not be read: {why}")
    return Exposure(server=view.name, cve=cve, mitigation_ids=ids, state=ExposureState.UNKNOWN,
                    reasons=(reason,))


def assess(view: ViewLike, cve: str, knowledge: Knowledge) -> Exposure:
    """One server × one CVE (see the module docstring for the rules)."""
    entries = knowledge.catalogue.by_cve(cve)
    if not entries:
        raise KeyError(f"{cve} is not in the catalogue")
    ids = tuple(e.id for e in entries)
    cve = entries[0].cve or cve
    state = view.state
    if view.failure is not None or state is None:
        return _not_read(view, cve, ids)
    build = build_of(state)
    info = knowledge.build_info(build) if build else None
    cu = info.cu_name if info else None
    found = all_artifacts(state)
    per_entry = [(e, *_entry_artifacts(e, found)) for e in entries]
    missing = [name for *_, miss in per_entry for name in miss]
    with_fix = next((e for e in entries if e.fix is not None), None)
    if with_fix is None:
        status, fix_text, note = FixStatus.NOT_FIXED, f"no update is known to fix {cve}", ""
    else:
        verdict = knowledge.fix_status(build, with_fix.id)
        status, fix_text, note = verdict.status, verdict.reason, _fix_note(with_fix, cu, knowledge)

    state_out: ExposureState
    reasons: list[ReasonItem] = []
    leftovers: tuple[Leftover, ...] = ()
    if status is FixStatus.FIXED:
        state_out = ExposureState.FIXED
        leftovers = tuple(Leftover(mitigation_id=e.id, artifacts=tuple(a.name for a in got))
                          for e, got, _ in per_entry if got)
    elif status is FixStatus.UNKNOWN:
        state_out = ExposureState.UNKNOWN
        code = Reason.UNKNOWN_BUILD if cu is None else Reason.FIX_UNKNOWN
        in_place = "; its mitigation is in place" if not missing else ""
        reasons = [ReasonItem(code=code, text=fix_text + in_place)]
    elif not missing:
        state_out, reasons = ExposureState.PROTECTED, _em_reasons(state, entries)
    else:
        state_out, reasons = ExposureState.EXPOSED, _why_exposed(state, entries, missing)
    return Exposure(
        server=view.name, cve=cve, mitigation_ids=ids, state=state_out, reasons=tuple(reasons),
        fix=fix_text, note=note, build=build, build_name=info.name if info else None,
        artifacts_present=tuple(a.name for _, got, _ in per_entry for a in got), leftovers=leftovers,
    )


def assess_fleet(views: Iterable[ViewLike], knowledge: Knowledge, cve: str | None = None) -> list[Exposure]:
    """Every server × every CVE (or the one asked for), in view order then catalogue order."""
    wanted = (cve,) if cve else cves(knowledge)
    return [assess(view, c, knowledge) for view in views for c in wanted]


# --------------------------------------------------------------------------- ordering and actions


def rank(exposure: Exposure) -> int:
    """Worst first, as monitoring ranks it: exposed, at risk or leftovers, unknown, protected, fixed."""
    if exposure.state is ExposureState.EXPOSED:
        return 0
    if exposure.at_risk or exposure.leftovers:
        return 1
    if exposure.state is ExposureState.UNKNOWN:
        return 2
    return 3 if exposure.state is ExposureState.PROTECTED else 4


def worst_first(exposures: Iterable[Exposure]) -> list[Exposure]:
    return sorted(exposures, key=rank)


_REAPPLY_FIXES = (
    Reason.SERVICE_STOPPED, Reason.APPLY_FAILED, Reason.ARTIFACT_MISSING, Reason.NOT_APPLIED_YET
)


def remedy(exposure: Exposure) -> ActionRequest | None:
    """The action that would close an exposed or at-risk cell, or None (OCS, unknown, fine).

    EM off at the org: enable it there; on the server: enable it; blocked: unblock; service
    stopped, artifact missing, apply failed, not applied yet: reapply (restart the service so EM
    checks again). OCS unreachable is a network problem: no action here fixes it.
    """
    if exposure.state not in (ExposureState.EXPOSED, ExposureState.PROTECTED) or not exposure.reasons:
        return None
    first = exposure.reasons[0].code
    servers, ids = (exposure.server,), exposure.mitigation_ids
    if first is Reason.EM_OFF_ORG:
        return ActionRequest(kind=ActionKind.ENABLE, servers=servers, scope=ActionScope.ORG)
    if first is Reason.EM_OFF_SERVER:
        return ActionRequest(kind=ActionKind.ENABLE, servers=servers)
    if first is Reason.BLOCKED:
        return ActionRequest(kind=ActionKind.UNBLOCK, servers=servers, mitigation_ids=ids)
    if first in _REAPPLY_FIXES:
        return ActionRequest(kind=ActionKind.REAPPLY, servers=servers, mitigation_ids=ids)
    return None


def leftover_deletions(exposures: Iterable[Exposure], *, also_block: bool = True) -> list[ActionRequest]:
    """Delete requests for every leftover: one request per set of mitigation IDs, servers grouped."""
    per_server: dict[str, set[str]] = {}
    for exp in exposures:
        if exp.state is ExposureState.FIXED and exp.leftovers:
            per_server.setdefault(exp.server, set()).update(lo.mitigation_id for lo in exp.leftovers)
    by_ids: dict[tuple[str, ...], list[str]] = {}
    for server, ids in per_server.items():
        by_ids.setdefault(tuple(sorted(ids)), []).append(server)
    return [ActionRequest(kind=ActionKind.DELETE, servers=tuple(servers), mitigation_ids=ids,
                          also_block=also_block)
            for ids, servers in by_ids.items()]
