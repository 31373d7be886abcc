"""Exchange knowledge: the mitigation catalogue and the build table, with the user's additions.

``load_knowledge(extra_builds, extra_catalogue)`` gives one object the engine, the UI and the
headless commands share; the package's own data files are read once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from emconsole.knowledge.builds import (
    BuildInfo,
    BuildRecord,
    BuildTable,
    build_from_admin_display_version,
    default_build_table,
    parse_build,
)
from emconsole.knowledge.catalogue import (
    Catalogue,
    CatalogueArtifact,
    CatalogueEntry,
    Fix,
    default_catalogue,
)
from emconsole.knowledge.fixes import FixStatus, FixVerdict, fix_status

__all__ = [
    "BuildInfo",
    "BuildRecord",
    "BuildTable",
    "Catalogue",
    "CatalogueArtifact",
    "CatalogueEntry",
    "Fix",
    "FixStatus",
    "FixVerdict",
    "Knowledge",
    "build_from_admin_display_version",
    "fix_status",
    "load_knowledge",
    "parse_build",
]


@dataclass(frozen=True)
class Knowledge:
    """The catalogue and build table in force (package data plus config)."""

    catalogue: Catalogue
    builds: BuildTable
    #: Answers of fix_status by (build, ID), which the catalogue and build table decide alone (neither
    #: changes once loaded); the console asks for every server on every refresh and a fleet has few
    #: builds (bench/overhead.py: a tenth of the UI's CPU per server went to scanning the table again).
    _verdicts: dict[tuple[str | None, str], FixVerdict] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def build_info(self, build: str) -> BuildInfo:
        return self.builds.lookup(build)

    def fix_status(self, build: str | None, mitigation_or_cve: str) -> FixVerdict:
        key = (build, mitigation_or_cve)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._verdicts[key] = fix_status(build, mitigation_or_cve, self.catalogue, self.builds)
        return verdict


def load_knowledge(
    extra_builds: Iterable[BuildRecord] = (), extra_catalogue: Iterable[CatalogueEntry] = ()
) -> Knowledge:
    """The package's catalogue and build table with the config's extras added."""
    return Knowledge(
        catalogue=default_catalogue().with_extra(extra_catalogue),
        builds=default_build_table().with_extra(extra_builds),
    )
