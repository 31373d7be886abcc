"""Whether a server's build is fixed for a mitigation's CVE: fixed, not fixed, or unknown.

The rule (EXCHANGE-EM.md, issue #9), decided here only:
1. a build the table cannot place in a CU is unknown;
2. a CU released after the fix (the catalogue's ``fixed_cus``) is fixed;
3. a CU with a known fixing build is fixed from that build on; when sources give several fixing
   builds (catalogue and config), the later one counts;
4. a CU without a fixing build is not fixed when the catalogue's list is complete (M1); otherwise
   (M2 on 2016/2019) builds up to the newest the table knows for the CU are not fixed, and newer
   ones are unknown until the config names the fixing build (``[[extra_builds]]`` with ``fixes``).
"""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict

from emconsole.knowledge.builds import BuildTable, Version, parse_build
from emconsole.knowledge.catalogue import Catalogue, CatalogueEntry


class FixStatus(str, Enum):
    FIXED = "fixed"
    NOT_FIXED = "not_fixed"
    UNKNOWN = "unknown"


class FixVerdict(BaseModel):
    """The status, one sentence saying why, and the catalogue's note on the fix (sources, doubts)."""

    model_config = ConfigDict(frozen=True)

    status: FixStatus
    reason: str
    note: str = ""


def _fixing_builds(entry: CatalogueEntry, table: BuildTable) -> dict[str, Version]:
    """CU name (casefolded) -> fixing build: the catalogue's, and config builds that say ``fixes``."""
    result: dict[str, Version] = {}

    def add(cu_name: str, version: Version | None) -> None:
        if version is None:
            return
        key = cu_name.casefold()
        result[key] = max(result.get(key, version), version)  # the later fix counts

    if entry.fix is not None:
        for cu_name, build in entry.fix.builds.items():
            add(cu_name, parse_build(build))
    names = {entry.id.casefold()} | ({entry.cve.casefold()} if entry.cve else set())
    for rec in table.records:
        if any(f.casefold() in names for f in rec.fixes):
            add(rec.cu_name, rec.version)
    return result


def _resolve(catalogue: Catalogue, mitigation_or_cve: str) -> CatalogueEntry | None:
    entry = catalogue.get(mitigation_or_cve)
    if entry is None:
        matches = catalogue.by_cve(mitigation_or_cve)
        entry = matches[0] if matches else None
    return entry


def _fmt(version: Version) -> str:
    return ".".join(str(n) for n in version)


def fix_status(
    build: str | None, mitigation_or_cve: str, catalogue: Catalogue, table: BuildTable
) -> FixVerdict:
    """Is ``build`` fixed for the CVE behind ``mitigation_or_cve`` (``"M2"``, ``"M2.1.0"``, a CVE)?"""
    entry = _resolve(catalogue, mitigation_or_cve)
    if entry is None:
        return FixVerdict(status=FixStatus.UNKNOWN, reason=f"{mitigation_or_cve} is not in the catalogue")
    fix = entry.fix
    if fix is None:
        return FixVerdict(status=FixStatus.UNKNOWN, reason=f"no update is known to fix {entry.id}")
    note = fix.note
    if not build:
        return FixVerdict(status=FixStatus.UNKNOWN, reason="the build was not read", note=note)
    version = parse_build(build)
    info = table.lookup(build)
    if version is None or info.cu_name is None:
        reason = f"{info.name} is not in the build table"
        return FixVerdict(status=FixStatus.UNKNOWN, reason=reason, note=note)
    cu = info.cu_name
    if cu.casefold() in {c.casefold() for c in fix.fixed_cus}:
        reason = f"{cu} was released after the fix ({fix.update})"
        return FixVerdict(status=FixStatus.FIXED, reason=reason, note=note)
    fixing = _fixing_builds(entry, table).get(cu.casefold())
    if fixing is not None:
        if version >= fixing:
            reason = f"{info.name} is at or above the fixing build {_fmt(fixing)}"
            return FixVerdict(status=FixStatus.FIXED, reason=reason, note=note)
        reason = f"{info.name} is below the fixing build {_fmt(fixing)}"
        return FixVerdict(status=FixStatus.NOT_FIXED, reason=reason, note=note)
    if fix.builds_complete:
        reason = f"no update for {cu} fixes {entry.cve or entry.id}"
        return FixVerdict(status=FixStatus.NOT_FIXED, reason=reason, note=note)
    latest = table.latest_of_cu(cu)
    if latest is not None and version <= latest.version:
        reason = f"{info.name} predates the fix: no known build of {cu} includes it"
        return FixVerdict(status=FixStatus.NOT_FIXED, reason=reason, note=note)
    reason = (
        f"{info.name} is newer than every known build of {cu} and the fixing build for {cu} is not "
        "known (name it in config: [[extra_builds]] with fixes)"
    )
    return FixVerdict(status=FixStatus.UNKNOWN, reason=reason, note=note)
