"""Facts derived from one server's snapshot that the console, the exposure rules and the headless
commands all need: the build, OCS reachability, drift, and applied IDs the build no longer needs.

Pure functions over ``ServerState`` and ``Knowledge``; one definition each, so the fleet table, the
exposure view, ``emconsole check`` and ``emconsole report`` cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from emconsole.knowledge import FixStatus, Knowledge, build_from_admin_display_version
from emconsole.models import (
    Artifact,
    ArtifactKind,
    MitigationKind,
    MitigationStatus,
    ServerState,
    base_id,
)

#: EM service events (EXCHANGE-EM.md): 1005/1006 a check or an apply succeeded, 1008 an error
#: such as "OCS unreachable" or "certificate validation failed".
EVENT_OK = (1005, 1006)
EVENT_ERROR = 1008


def build_of(state: ServerState) -> str | None:
    """The build number, from the status script or from ``AdminDisplayVersion``."""
    return state.build or build_from_admin_display_version(state.admin_display_version)


def ocs_reachable(state: ServerState) -> bool | None:
    """Whether the EM service's latest check reached OCS, from its newest 1005/1006/1008 event.

    None when no such event is in the snapshot (service never ran, events not readable). Events
    of one run share a time stamp, so the record ID breaks ties (an apply error logged before the
    run's closing 1005 does not read as "OCS unreachable").
    """
    events = [e for e in state.events if e.id in (*EVENT_OK, EVENT_ERROR)]
    if not events:
        return None
    newest = max(events, key=lambda e: (e.time, e.record_id or 0))
    return newest.id != EVENT_ERROR


def same_mitigation(a: str, b: str) -> bool:
    """Whether two IDs name the same mitigation: equal, or one is the other's base / prefix
    (``M2`` ~ ``M2.1.0``; the rule ``EEMS M2.1 ...`` ~ applied ``M2.1.0``)."""
    x, y = a.strip().casefold(), b.strip().casefold()
    if x == y:
        return True
    if base_id(x) != base_id(y):
        return False
    return x == base_id(x) or y == base_id(y) or x.startswith(y + ".") or y.startswith(x + ".")


def all_artifacts(state: ServerState) -> list[Artifact]:
    """Every artifact found on the server (the scan and each mitigation's own), each once."""
    found: dict[tuple[str, str, str], Artifact] = {}
    for art in (*state.artifacts, *(a for m in state.mitigations for a in m.artifacts)):
        found.setdefault((art.kind.value, art.name.casefold(), (art.pspath or "").casefold()), art)
    return list(found.values())


@dataclass(frozen=True)
class Drift:
    """One disagreement between what EM reports and what is on the server."""

    mitigation_id: str
    what: str


def obsolete_ids(state: ServerState, knowledge: Knowledge) -> list[str]:
    """Applied IDs whose fix this server's build already has: EM still lists them, nothing needs them."""
    build = build_of(state)
    if build is None:
        return []
    return [
        mid
        for mid in state.applied
        if knowledge.catalogue.get(mid) is not None
        and knowledge.fix_status(build, mid).status is FixStatus.FIXED
    ]


def drift(state: ServerState, obsolete: Iterable[str] = ()) -> list[Drift]:
    """Applied but its rule is missing; a rule present but not listed; applied though fixed.

    ``obsolete``: applied IDs the build no longer needs (``obsolete_ids``).
    """
    out: list[Drift] = []
    found = all_artifacts(state)
    found_ids = [a.mitigation_id for a in found if a.mitigation_id]
    for mit in state.mitigations:
        if mit.status is not MitigationStatus.APPLIED or mit.kind is not MitigationKind.URL_REWRITE:
            continue
        if not any(same_mitigation(mit.id, f) for f in found_ids):
            out.append(Drift(mit.id, "applied, but its rewrite rule is missing"))
    rewrite = (ArtifactKind.REWRITE_RULE, ArtifactKind.REWRITE_PRECONDITION)
    for art in found:
        mid = art.mitigation_id
        if art.kind in rewrite and mid and not any(same_mitigation(mid, a) for a in state.applied):
            out.append(Drift(mid, f"rule '{art.name}' present but not listed as applied"))
    for mid in obsolete:
        out.append(Drift(mid, "applied, but this build has the fix (leftover)"))
    return list(dict.fromkeys(out))


def ids_matching(ids: Iterable[str], mitigation_id: str) -> list[str]:
    """The IDs of ``ids`` that name the mitigation ``mitigation_id`` (any form)."""
    return [i for i in ids if same_mitigation(i, mitigation_id)]
