"""The mitigation catalogue: ID -> kind, CVE, the artifacts it leaves, the update that fixes it.

Data: ``catalogue.json`` in this package holds only real, published mitigations (PING1, M1, M2,
transcribed from Microsoft's documentation with the unconfirmed notes kept). Config adds entries
(``[[extra_catalogue]]``: site-specific IDs, the lab's service and app-pool examples) in the same
shape. IDs a server reports that are in neither are shown as the server describes them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from emconsole.models import (
    MITIGATION_ID_PATTERN,
    MITIGATION_ID_RE,
    Artifact,
    ArtifactKind,
    Direction,
    MitigationKind,
    base_id,
)
from emconsole.remote import validate


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CatalogueArtifact(_Strict):
    """What a mitigation leaves: a rewrite rule / precondition (IIS path, filter, direction), or a
    service / app pool (by name; ``mitigated_when`` says what state counts as mitigated)."""

    kind: ArtifactKind
    name: str = Field(min_length=1)
    direction: Direction | None = None
    pspath: str | None = None
    filter: str | None = None
    match: str | None = None
    action: str | None = None
    mitigated_when: str | None = None

    @field_validator("name")
    @classmethod
    def _sendable_name(cls, value: str, info: ValidationInfo) -> str:
        """Service and app pool names go into the status and delete scripts: they must pass the
        remote scripts' own rules here, when the config is read, not fail every refresh later."""
        kind = info.data.get("kind")
        try:
            if kind is ArtifactKind.SERVICE:
                validate.service_name(value)
            elif kind is ArtifactKind.APP_POOL:
                validate.app_pool(value)
        except validate.InvalidInput:
            what = ("a service name: 1-80 letters, digits, '.', '_' or '-'" if kind is ArtifactKind.SERVICE
                    else "an app pool name: 1-64 letters, digits, spaces, '.', '_' or '-', "
                         "no space at either end")
            raise ValueError(f"must be {what} (it is sent to the servers)") from None
        return value

    @model_validator(mode="after")
    def _rewrite_has_location(self) -> CatalogueArtifact:
        rewrite = self.kind in (ArtifactKind.REWRITE_RULE, ArtifactKind.REWRITE_PRECONDITION)
        if rewrite and not (self.pspath and self.filter and self.direction):
            raise ValueError("a rewrite rule or precondition needs pspath, filter and direction")
        return self


class Fix(_Strict):
    """The update that makes a mitigation unnecessary.

    ``builds``: the fixing build per CU (``"Exchange 2019 CU12": "15.2.1118.20"``);
    ``fixed_cus``: CUs released after the fix (every build of them is fixed);
    ``builds_complete``: True when ``builds`` names the fixing build of every CU that got one, so
    a CU without an entry is simply not fixed; False when fixing builds may be missing (M2 on
    2016/2019), so a build newer than the table knows for its CU is unknown.
    """

    update: str | None = None
    builds: dict[str, str] = Field(default_factory=dict)
    fixed_cus: tuple[str, ...] = ()
    builds_complete: bool = True
    note: str = ""
    unconfirmed: str | None = None


class CatalogueEntry(_Strict):
    """One mitigation ID as published (or as added by config)."""

    id: str = Field(pattern=MITIGATION_ID_PATTERN)
    kind: MitigationKind
    description: str = ""
    cve: str | None = Field(default=None, pattern=r"^CVE-\d{4}-\d{4,}$")
    applied_ids_seen: tuple[str, ...] = ()
    artifacts: tuple[CatalogueArtifact, ...] = ()
    fix: Fix | None = None
    side_effects_reported: str | None = None

    @field_validator("applied_ids_seen")
    @classmethod
    def _valid_ids(cls, ids: tuple[str, ...]) -> tuple[str, ...]:
        """These IDs are written by block: the remote scripts' ID rule applies when the config is read."""
        for full in ids:
            if not MITIGATION_ID_RE.fullmatch(full):
                raise ValueError(f"applied ID {validate.shown(full)} is not a mitigation ID "
                                 "(1-64 letters, digits, '.', '_' or '-', starting with a letter or digit)")
        return ids

    @model_validator(mode="after")
    def _base_only(self) -> CatalogueEntry:
        if base_id(self.id) != self.id:
            raise ValueError(f"catalogue IDs are base IDs ('{base_id(self.id)}', not '{self.id}')")
        for full in self.applied_ids_seen:
            if base_id(full).casefold() != self.id.casefold():
                raise ValueError(f"applied ID '{full}' does not belong to '{self.id}'")
        return self


class Catalogue:
    """Lookups by any form of a mitigation ID (``M2``, ``m2.1.0``) and by CVE."""

    def __init__(self, entries: Iterable[CatalogueEntry]) -> None:
        self._entries: dict[str, CatalogueEntry] = {}
        for entry in entries:
            self._entries[entry.id.casefold()] = entry  # later entries (config) replace earlier

    @property
    def entries(self) -> tuple[CatalogueEntry, ...]:
        return tuple(self._entries.values())

    def with_extra(self, extra: Iterable[CatalogueEntry]) -> Catalogue:
        """A new catalogue with the user's entries added; a user entry replaces one with its ID."""
        return Catalogue((*self._entries.values(), *extra))

    def get(self, mitigation_id: str) -> CatalogueEntry | None:
        """The entry for a base or full ID, case-insensitively (``M2.1.0`` -> M2)."""
        return self._entries.get(base_id(mitigation_id).casefold())

    def by_cve(self, cve: str) -> tuple[CatalogueEntry, ...]:
        key = cve.strip().casefold()
        return tuple(e for e in self._entries.values() if e.cve is not None and e.cve.casefold() == key)

    def cves(self) -> tuple[str, ...]:
        """Every CVE the catalogue knows, in catalogue order, each once."""
        return tuple(dict.fromkeys(e.cve for e in self._entries.values() if e.cve is not None))

    def artifacts_of(self, mitigation_id: str, found: Iterable[Artifact]) -> tuple[Artifact, ...]:
        """What of ``found`` belongs to the mitigation: its ``EEMS <ID>`` rules (``Artifact.belongs_to``)
        and the services and app pools its entry names — their names carry no mitigation ID, so only
        the catalogue can tell whose they are."""
        entry = self.get(mitigation_id)
        named = {(a.kind, a.name.casefold()) for a in (entry.artifacts if entry else ())
                 if a.kind in (ArtifactKind.SERVICE, ArtifactKind.APP_POOL)}
        return tuple(a for a in found if a.belongs_to(mitigation_id) or (a.kind, a.name.casefold()) in named)

    def block_ids(self, mitigation_id: str) -> tuple[str, ...]:
        """What a block writes: the base ID, every full ID known for it, and the given ID.

        DESIGN.md: so the block holds whichever form Exchange matches on (see
        ``emconsole.models.block_matches``).
        """
        base = base_id(mitigation_id)
        entry = self.get(mitigation_id)
        seen = entry.applied_ids_seen if entry is not None else ()
        ids = [entry.id if entry is not None else base, *seen, mitigation_id.strip()]
        unique: dict[str, str] = {}
        for i in ids:
            unique.setdefault(i.casefold(), i)
        return tuple(unique.values())


def _load_entries(text: str) -> list[CatalogueEntry]:
    return [CatalogueEntry.model_validate(item) for item in json.loads(text)["mitigations"]]


@lru_cache(maxsize=1)
def default_catalogue() -> Catalogue:
    """The catalogue shipped in the package (read once)."""
    text = resources.files("emconsole.knowledge").joinpath("catalogue.json").read_text(encoding="utf-8")
    return Catalogue(_load_entries(text))
