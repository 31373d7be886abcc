"""The catalogue, the build table and the fix rule, checked against Microsoft's published facts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from emconsole.knowledge import (
    BuildRecord,
    CatalogueEntry,
    FixStatus,
    build_from_admin_display_version,
    load_knowledge,
    parse_build,
)
from emconsole.models import ArtifactKind, Direction, MitigationKind

# Microsoft's published facts as compiled for this project (outside the repository): the
# transcription tests below compare against them where they are present.
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
needs_reference = pytest.mark.skipif(
    not (REFERENCE / "mitigations.json").is_file(), reason=f"reference data not found at {REFERENCE}"
)


@pytest.mark.parametrize(
    ("build", "name"),
    [
        ("15.1.2507.6", "Exchange 2016 CU23"),
        ("15.1.2507.66", "Exchange 2016 CU23 Feb26SU"),
        ("15.1.2507.32", "Exchange 2016 CU23 Aug23SUv2"),
        ("15.2.1544.4", "Exchange 2019 CU14"),
        ("15.2.1544.39", "Exchange 2019 CU14 Feb26SU"),
        ("15.2.1748.10", "Exchange 2019 CU15"),
        ("15.2.1748.43", "Exchange 2019 CU15 Feb26SU"),
        ("15.2.2562.17", "Exchange SE RTM"),
        ("15.2.2562.37", "Exchange SE RTM Feb26SU"),
        ("15.2.2562.45", "Exchange SE RTM Jul26SU"),
        ("15.1.1713.5", "Exchange 2016 CU12 Feb19SU"),  # the CU's own build is also its first SU
        ("15.2.1748.50", "Exchange 2019 CU15, unlisted build 15.2.1748.50"),
        ("15.2.9999.1", "unknown build 15.2.9999.1"),
        ("not a build", "unknown build not a build"),
    ],
)
def test_build_names(build: str, name: str) -> None:
    assert load_knowledge().build_info(build).name == name


def test_unknown_build_keeps_its_number() -> None:
    info = load_knowledge().build_info("15.02.9999.001")
    assert not info.known and info.build == "15.2.9999.1" and info.cu is None


@pytest.mark.parametrize(
    ("text", "build"),
    [
        ("Version 15.2 (Build 1748.43)", "15.2.1748.43"),
        ("Version 15.1 (Build 2507.66)", "15.1.2507.66"),
        ("version 15.2 (build 2562.17)", "15.2.2562.17"),
        ("15.2.1544.39", "15.2.1544.39"),
        ("Version 15.2", None),
        ("", None),
        (None, None),
    ],
)
def test_admin_display_version(text: str | None, build: str | None) -> None:
    assert build_from_admin_display_version(text) == build


def test_parse_build() -> None:
    assert parse_build("15.2.1748.43") == (15, 2, 1748, 43)
    assert parse_build("15.2.1748") is None
    assert parse_build("15.2.1748.43; rm") is None


@needs_reference
def test_build_table_matches_the_reference() -> None:
    """Every build of the published table is in the package's table, under its own name."""
    ref = json.loads((REFERENCE / "exchange-builds.json").read_text())
    knowledge = load_knowledge()
    count = 0
    for product, cus in ref["products"].items():
        for cu, data in cus.items():
            for update, build in [(None, data["build"]), *data["updates"].items()]:
                info = knowledge.build_info(build)
                assert (info.product, info.cu, info.exact) == (product, cu, True), build
                if info.update != update:  # only the CU-equals-first-SU case may differ
                    assert update is None and build in data["updates"].values()
                count += 1
    assert count == len(knowledge.builds.records) == 224


@needs_reference
def test_catalogue_matches_the_reference() -> None:
    ref = json.loads((REFERENCE / "mitigations.json").read_text())["mitigations"]
    catalogue = load_knowledge().catalogue
    assert [e.id for e in catalogue.entries] == list(ref)
    for entry in catalogue.entries:
        published = ref[entry.id]
        assert entry.cve == published["cve"]
        assert entry.description.rstrip(".").casefold() == published["description"].rstrip(".").casefold()
        assert [a.name for a in entry.artifacts] == [a["name"] for a in published["artifacts"]]
        for ours, theirs in zip(entry.artifacts, published["artifacts"], strict=True):
            assert (ours.pspath, ours.filter, ours.direction) == (
                theirs["pspath"],
                theirs["filter"],
                Direction(theirs["direction"]),
            )
        if published["fix"] is not None:
            assert entry.fix is not None and entry.fix.builds == published["fix"]["builds"]
            if "unconfirmed" in published["fix"]:
                assert entry.fix.unconfirmed == published["fix"]["unconfirmed"]
    m1 = catalogue.get("m1.1")
    assert m1 is not None and m1.kind is MitigationKind.URL_REWRITE
    assert m1.artifacts[0].kind is ArtifactKind.REWRITE_RULE
    ping = catalogue.get("PING1")
    assert ping is not None and ping.kind is MitigationKind.HEARTBEAT and ping.artifacts == ()


def test_lookup_by_cve_and_block_ids() -> None:
    catalogue = load_knowledge().catalogue
    assert [e.id for e in catalogue.by_cve("cve-2026-42897")] == ["M2"]
    assert catalogue.cves() == ("CVE-2022-41040", "CVE-2026-42897")
    assert catalogue.block_ids("M2") == ("M2", "M2.1", "M2.1.0")
    assert catalogue.block_ids("M2.1.7") == ("M2", "M2.1", "M2.1.0", "M2.1.7")
    assert catalogue.block_ids("X9.1") == ("X9", "X9.1")  # unknown to the catalogue


@pytest.mark.parametrize(
    ("build", "key", "status"),
    [
        # M1 (CVE-2022-41040): Nov22SU per CU, later CUs fixed
        ("15.1.2507.13", "M1", FixStatus.NOT_FIXED),  # 2016 CU23 Oct22SU
        ("15.1.2507.16", "M1", FixStatus.FIXED),  # 2016 CU23 Nov22SU
        ("15.1.2507.66", "M1.1", FixStatus.FIXED),
        ("15.1.2375.32", "M1", FixStatus.NOT_FIXED),  # 2016 CU22 Oct22SU
        ("15.1.2308.27", "M1", FixStatus.NOT_FIXED),  # 2016 CU21: no fixing update ever
        ("15.2.986.36", "CVE-2022-41040", FixStatus.FIXED),  # 2019 CU11 Nov22SU
        ("15.2.1118.15", "M1", FixStatus.NOT_FIXED),  # 2019 CU12 Oct22SU
        ("15.2.1258.12", "M1", FixStatus.FIXED),  # 2019 CU13 released after the fix
        ("15.2.2562.17", "M1", FixStatus.FIXED),  # SE
        # M2 (CVE-2026-42897): SE fixed from .45 (the later of two sources); 2016/2019 not fixed
        ("15.2.2562.37", "M2", FixStatus.NOT_FIXED),
        ("15.2.2562.44", "M2.1.0", FixStatus.NOT_FIXED),  # Learn's June SU would count; EOMT's July wins
        ("15.2.2562.45", "M2", FixStatus.FIXED),
        ("15.2.2562.53", "M2", FixStatus.FIXED),
        ("15.2.1748.43", "M2", FixStatus.NOT_FIXED),  # 2019 CU15 Feb26SU, newest in the table
        ("15.2.1748.44", "M2", FixStatus.UNKNOWN),  # newer than the table knows for CU15
        ("15.1.2507.70", "CVE-2026-42897", FixStatus.UNKNOWN),
        ("15.2.1544.39", "M2", FixStatus.NOT_FIXED),
        # unknowable
        ("15.2.9999.1", "M2", FixStatus.UNKNOWN),
        (None, "M1", FixStatus.UNKNOWN),
        ("15.2.1748.43", "M99", FixStatus.UNKNOWN),
        ("15.2.1748.43", "PING1", FixStatus.UNKNOWN),  # nothing to fix
    ],
)
def test_fix_status(build: str | None, key: str, status: FixStatus) -> None:
    verdict = load_knowledge().fix_status(build, key)
    assert verdict.status is status, verdict.reason
    assert verdict.reason


def test_m2_verdict_says_sources_disagree() -> None:
    assert "disagree" in load_knowledge().fix_status("15.2.2562.44", "M2").note


def test_config_builds_make_newer_builds_known() -> None:
    fixing = BuildRecord(build="15.2.1748.48", product="Exchange 2019", cu="CU15", update="Jun26SU",
                         fixes=("CVE-2026-42897",))
    plain = BuildRecord(build="15.1.2507.70", product="Exchange 2016", cu="CU23", update="Apr26SU")
    knowledge = load_knowledge(extra_builds=[fixing, plain])
    assert knowledge.build_info("15.2.1748.48").name == "Exchange 2019 CU15 Jun26SU"
    assert knowledge.fix_status("15.2.1748.48", "M2").status is FixStatus.FIXED
    assert knowledge.fix_status("15.2.1748.60", "M2").status is FixStatus.FIXED
    assert knowledge.fix_status("15.2.1748.44", "M2").status is FixStatus.NOT_FIXED
    # a known build that does not say it fixes M2 is not fixed; a newer one stays unknown
    assert knowledge.fix_status("15.1.2507.70", "M2").status is FixStatus.NOT_FIXED
    assert knowledge.fix_status("15.1.2507.71", "M2").status is FixStatus.UNKNOWN
    # the package's own table is untouched
    assert load_knowledge().fix_status("15.2.1748.48", "M2").status is FixStatus.UNKNOWN


def test_config_catalogue_entries() -> None:
    lab = CatalogueEntry.model_validate(
        {
            "id": "LAB-S1",
            "kind": "service",
            "description": "lab-only example",
            "artifacts": [{"kind": "service", "name": "MSExchangeLabDemo", "mitigated_when": "Stopped"}],
        }
    )
    knowledge = load_knowledge(extra_catalogue=[lab])
    entry = knowledge.catalogue.get("lab-s1.1")
    assert entry is not None and entry.kind is MitigationKind.SERVICE
    assert load_knowledge().catalogue.get("LAB-S1") is None


@pytest.mark.parametrize(
    "data",
    [
        {"id": "M9.1", "kind": "url_rewrite"},  # full ID where a base ID belongs
        {"id": "M9", "kind": "registry"},
        {"id": "M9", "kind": "url_rewrite", "cve": "2026-1"},
        {"id": "M9", "kind": "url_rewrite", "artifacts": [{"kind": "rewrite_rule", "name": "EEMS M9.1 x"}]},
        {"id": "M9", "kind": "url_rewrite", "applied_ids_seen": ["M8.1"]},
        {"id": "M9", "kind": "url_rewrite", "colour": "red"},
    ],
)
def test_bad_catalogue_entries_are_refused(data: dict) -> None:
    with pytest.raises(ValidationError):
        CatalogueEntry.model_validate(data)
