"""What the console must be told about a lab: its LAB-ONLY catalogue entries and any build it lacks.

The package's catalogue holds only published mitigations, so the lab's invented service and
app-pool examples reach the console as config extras (``[[extra_catalogue]]``), derived here from
the same ``Entry`` objects the lab's OCS publishes — one source for both sides.
"""

from __future__ import annotations

from emconsole.backends.lab.exchange.catalogue import Entry
from emconsole.backends.lab.exchange.org import Organisation

from emconsole.knowledge import BuildRecord, BuildTable, CatalogueArtifact, CatalogueEntry
from emconsole.models import ArtifactKind, MitigationKind

# OCS action type -> (catalogue kind, artifact kind, the state that counts as mitigated)
_KINDS = {
    "Service": (MitigationKind.SERVICE, ArtifactKind.SERVICE, "Stopped and StartType Disabled"),
    "AppPool": (MitigationKind.APP_POOL, ArtifactKind.APP_POOL, "Stopped"),
}


def catalogue_entry(entry: Entry) -> CatalogueEntry:
    """The console's catalogue entry for one lab-only service or app-pool mitigation."""
    kind, artifact_kind, mitigated = _KINDS[entry.actions[0].type]
    return CatalogueEntry(
        id=entry.short_id,
        kind=kind,
        description=entry.desc,
        applied_ids_seen=(entry.id,),
        artifacts=tuple(
            CatalogueArtifact(kind=artifact_kind, name=a.value, mitigated_when=mitigated)
            for a in entry.actions
        ),
        side_effects_reported="LAB-ONLY example: not a Microsoft mitigation",
    )


def lab_catalogue(org: Organisation) -> tuple[CatalogueEntry, ...]:
    """The lab-only entries the organisation's OCS publishes (none with ``lab_examples = false``)."""
    return tuple(
        catalogue_entry(e) for e in org.catalogue.published() if e.lab_only and e.actions[0].type in _KINDS
    )


def missing_builds(org: Organisation, table: BuildTable) -> tuple[BuildRecord, ...]:
    """The builds the lab's servers run that ``table`` does not list exactly, as config records."""
    seen: dict[str, BuildRecord] = {}
    for server in org.servers.values():
        build = server.record.build
        if build.version not in seen and not table.lookup(build.version).exact:
            seen[build.version] = BuildRecord(
                build=build.version, product=build.product, cu=build.cu, update=build.update or None
            )
    return tuple(seen.values())
