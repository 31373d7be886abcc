"""The Exchange builds the lab's servers run, and the build rules of the EM service.

A lab-side transcription (from Microsoft's published build numbers) of just the CUs the lab uses:
Exchange 2016 CU23, 2019 CU14/CU15 and SE RTM with their SUs. Update names encode their month
(``Mar23SU`` = March 2023), which decides whether the build can still fetch from OCS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cached_property

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    )
}

# product, CU, CU release month, base build, {update: build}
_TABLE: tuple[tuple[str, str, str, str, dict[str, str]], ...] = (
    (
        "Exchange 2016",
        "CU23",
        "Apr22",
        "15.1.2507.6",
        {
            "May22SU": "15.1.2507.9",
            "Aug22SU": "15.1.2507.12",
            "Oct22SU": "15.1.2507.13",
            "Nov22SU": "15.1.2507.16",
            "Jan23SU": "15.1.2507.17",
            "Feb23SU": "15.1.2507.21",
            "Mar23SU": "15.1.2507.23",
            "Jun23SU": "15.1.2507.27",
            "Aug23SU": "15.1.2507.31",
            "Aug23SUv2": "15.1.2507.32",
            "Oct23SU": "15.1.2507.34",
            "Nov23SU": "15.1.2507.35",
            "Mar24SU": "15.1.2507.37",
            "Apr24HU": "15.1.2507.39",
            "Nov24SU": "15.1.2507.43",
            "Nov24SUv2": "15.1.2507.44",
            "Apr25HU": "15.1.2507.55",
            "May25HU": "15.1.2507.57",
            "Aug25SU": "15.1.2507.58",
            "Sep25HU": "15.1.2507.59",
            "Oct25SU": "15.1.2507.61",
            "Dec25SU": "15.1.2507.63",
            "Feb26SU": "15.1.2507.66",
        },
    ),
    (
        "Exchange 2019",
        "CU14",
        "Feb24",
        "15.2.1544.4",
        {
            "Mar24SU": "15.2.1544.9",
            "Apr24HU": "15.2.1544.11",
            "Nov24SU": "15.2.1544.13",
            "Nov24SUv2": "15.2.1544.14",
            "Apr25HU": "15.2.1544.25",
            "May25HU": "15.2.1544.27",
            "Aug25SU": "15.2.1544.33",
            "Sep25HU": "15.2.1544.34",
            "Oct25SU": "15.2.1544.36",
            "Dec25SU": "15.2.1544.37",
            "Feb26SU": "15.2.1544.39",
        },
    ),
    (
        "Exchange 2019",
        "CU15",
        "Feb25",
        "15.2.1748.10",
        {
            "Apr25HU": "15.2.1748.24",
            "May25HU": "15.2.1748.26",
            "Aug25SU": "15.2.1748.36",
            "Sep25HU": "15.2.1748.37",
            "Oct25SU": "15.2.1748.39",
            "Dec25SU": "15.2.1748.42",
            "Feb26SU": "15.2.1748.43",
        },
    ),
    (
        "Exchange SE",
        "RTM",
        "Jul25",
        "15.2.2562.17",
        {
            "Aug25SU": "15.2.2562.20",
            "Sep25HU": "15.2.2562.27",
            "Oct25SU": "15.2.2562.29",
            "Dec25SU": "15.2.2562.35",
            "Feb26SU": "15.2.2562.37",
            "Jul26SU": "15.2.2562.45",
        },
    ),
)

# Builds older than this cannot fetch the catalogue since the January 2025 certificate change.
FETCH_CUTOFF = date(2023, 3, 1)


def _month(tag: str) -> date:
    return date(2000 + int(tag[3:5]), _MONTHS[tag[:3]], 1)


@dataclass(frozen=True)
class Build:
    """One build of one product: ``15.2.1748.43`` = Exchange 2019 CU15 Feb26SU."""

    product: str
    cu: str
    update: str  # "" for the CU (or RTM) itself
    version: str
    released: date

    @property
    def label(self) -> str:
        return f"{self.product} {self.cu}" + (f" {self.update}" if self.update else "")

    @cached_property  # a Build never changes; Get-ExchangeServer reads these for every server
    def parts(self) -> tuple[int, int, int, int]:
        a, b, c, d = (int(x) for x in self.version.split("."))
        return a, b, c, d

    @cached_property
    def admin_display_version(self) -> str:
        """As Get-ExchangeServer shows it: ``Version 15.2 (Build 1748.43)``."""
        major, minor, build, rev = self.parts
        return f"Version {major}.{minor} (Build {build}.{rev})"

    @property
    def can_fetch(self) -> bool:
        return self.released >= FETCH_CUTOFF


def _all() -> dict[str, Build]:
    out: dict[str, Build] = {}
    for product, cu, month, base, updates in _TABLE:
        out[base] = Build(product, cu, "", base, _month(month))
        for update, version in updates.items():
            out[version] = Build(product, cu, update, version, _month(update))
    return out


BUILDS: dict[str, Build] = _all()


def build(version_or_label: str) -> Build:
    """Look up ``15.2.1748.43`` or ``"Exchange 2019 CU15 Feb26SU"`` / ``"2019 CU15 Feb26SU"``."""
    if version_or_label in BUILDS:
        return BUILDS[version_or_label]
    wanted = version_or_label.replace("Exchange ", "").strip().lower()
    for item in BUILDS.values():
        if item.label.replace("Exchange ", "").lower() == wanted:
            return item
    raise KeyError(f"unknown lab build {version_or_label!r}")


def latest(product: str, cu: str) -> Build:
    """The newest build of a CU in the table."""
    return max((b for b in BUILDS.values() if b.product == product and b.cu == cu), key=lambda b: b.parts)
