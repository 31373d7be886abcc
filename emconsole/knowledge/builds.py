"""The Exchange build table: build number -> product, CU and update name.

Data: ``builds.json`` in this package (Microsoft's published builds up to Feb 2026, see its
``about``), plus the ``[[extra_builds]]`` a user adds in config. A build the table does not list
is never guessed: it keeps its number, and its product/CU only when another build of the same CU
(same ``15.x.NNNN``) is known.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field

Version = tuple[int, int, int, int]

_BUILD_RE = re.compile(r"^\s*(\d{1,5})\.(\d{1,5})\.(\d{1,6})\.(\d{1,6})\s*$")
_ADMIN_DISPLAY_RE = re.compile(r"Version\s+(\d{1,5})\.(\d{1,5})\s+\(Build\s+(\d{1,6})\.(\d{1,6})\)", re.I)


def parse_build(text: str) -> Version | None:
    """``"15.2.1748.43"`` -> ``(15, 2, 1748, 43)``; anything else -> None."""
    match = _BUILD_RE.match(text)
    if match is None:
        return None
    major, minor, build, rev = (int(g) for g in match.groups())
    return (major, minor, build, rev)


def build_from_admin_display_version(text: str | None) -> str | None:
    """``AdminDisplayVersion`` ``"Version 15.2 (Build 1748.43)"`` -> ``"15.2.1748.43"``.

    A plain dotted build is accepted too (some tools print ``ServerVersion`` instead); anything
    else gives None so the UI shows the raw text rather than a wrong build.
    """
    if not text:
        return None
    match = _ADMIN_DISPLAY_RE.search(text)
    if match is not None:
        return ".".join(str(int(g)) for g in match.groups())
    version = parse_build(text)
    return None if version is None else ".".join(str(n) for n in version)


class BuildRecord(BaseModel):
    """One published build: a CU (``update`` None) or one of its security/hotfix updates.

    The same shape is used by ``[[extra_builds]]`` in config; ``fixes`` (config only) names the
    mitigation IDs or CVEs this build fixes, which makes newer builds of its CU "fixed" too.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    build: str = Field(pattern=_BUILD_RE.pattern)
    product: str = Field(min_length=1)
    cu: str = Field(min_length=1)
    update: str | None = None
    fixes: tuple[str, ...] = ()

    @property
    def version(self) -> Version:
        version = parse_build(self.build)
        assert version is not None  # guaranteed by the field pattern
        return version

    @property
    def cu_name(self) -> str:
        """``"Exchange 2019 CU15"``: the key the catalogue's fix tables use."""
        return f"{self.product} {self.cu}"


class BuildInfo(BaseModel):
    """What the table says about one build. ``exact`` is False for an unlisted build of a known CU."""

    model_config = ConfigDict(frozen=True)

    build: str
    product: str | None = None
    cu: str | None = None
    update: str | None = None
    exact: bool = False

    @property
    def known(self) -> bool:
        return self.product is not None

    @property
    def cu_name(self) -> str | None:
        return None if self.product is None or self.cu is None else f"{self.product} {self.cu}"

    @property
    def name(self) -> str:
        """``"Exchange 2019 CU15 Feb26SU"``; ``"Exchange 2019 CU15, unlisted build 15.2.1748.50"``;
        ``"unknown build 15.2.9999.1"``."""
        if self.cu_name is None:
            return f"unknown build {self.build}"
        if not self.exact:
            return f"{self.cu_name}, unlisted build {self.build}"
        return self.cu_name if self.update is None else f"{self.cu_name} {self.update}"


class BuildTable:
    """Lookups over a list of ``BuildRecord``: by exact build, and by CU (``major.minor.build``)."""

    def __init__(self, records: Iterable[BuildRecord]) -> None:
        self._records: tuple[BuildRecord, ...] = tuple(records)
        self._exact: dict[Version, BuildRecord] = {}
        self._by_cu_key: dict[tuple[int, int, int], list[BuildRecord]] = {}
        self._by_cu_name: dict[str, list[BuildRecord]] = {}
        for rec in self._records:
            # Later records win (the user's extras come last), except that a CU's own build that
            # equals its first SU's (2016 CU12 / Feb19SU) keeps the SU name, which says more.
            old = self._exact.get(rec.version)
            if old is None or not (rec.update is None and old.update is not None and old.cu == rec.cu):
                self._exact[rec.version] = rec
            self._by_cu_key.setdefault(rec.version[:3], []).append(rec)
            self._by_cu_name.setdefault(rec.cu_name.casefold(), []).append(rec)

    @property
    def records(self) -> tuple[BuildRecord, ...]:
        return self._records

    def with_extra(self, extra: Iterable[BuildRecord]) -> BuildTable:
        """A new table with the user's builds added (a user record wins on the same build)."""
        return BuildTable((*self._records, *extra))

    def lookup(self, build: str) -> BuildInfo:
        """Name a build; an unlisted one keeps its number and, if its CU is known, the CU."""
        version = parse_build(build)
        if version is None:
            return BuildInfo(build=build.strip())
        text = ".".join(str(n) for n in version)
        rec = self._exact.get(version)
        if rec is not None:
            return BuildInfo(build=text, product=rec.product, cu=rec.cu, update=rec.update, exact=True)
        siblings = self._by_cu_key.get(version[:3])
        if siblings:
            return BuildInfo(build=text, product=siblings[0].product, cu=siblings[0].cu)
        return BuildInfo(build=text)

    def of_cu(self, cu_name: str) -> tuple[BuildRecord, ...]:
        """Every build of ``"Exchange 2019 CU15"`` the table knows, in table order."""
        return tuple(self._by_cu_name.get(cu_name.casefold(), ()))

    def latest_of_cu(self, cu_name: str) -> BuildRecord | None:
        """The newest build the table knows for ``"Exchange 2019 CU15"`` (None if the CU is unknown)."""
        records = self._by_cu_name.get(cu_name.casefold())
        return max(records, key=lambda r: r.version) if records else None


def _load_records(text: str) -> list[BuildRecord]:
    return [BuildRecord.model_validate(item) for item in json.loads(text)["builds"]]


@lru_cache(maxsize=1)
def default_build_table() -> BuildTable:
    """The table shipped in the package (read once)."""
    text = resources.files("emconsole.knowledge").joinpath("builds.json").read_text(encoding="utf-8")
    return BuildTable(_load_records(text))
