"""Exchange knowledge: the mitigation catalogue and the build table, with the user's additions.

``load_knowledge(extra_builds, extra_catalogue)`` gives one object the engine, the UI and the
headless commands share; the package's own data files are read once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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

    def build_info(self, build: str) -> BuildInfo:
        return self.builds.lookup(build)

    def fix_status(self, build: str | None, mitigation_or_cve: str) -> FixVerdict:
        return fix_status(build, mitigation_or_cve, self.catalogue, self.builds)


def load_knowledge(
    extra_builds: Iterable[BuildRecord] = (), extra_catalogue: Iterable[CatalogueEntry] = ()
) -> Knowledge:
    """The package's catalogue and build table with the config's extras added."""
    return Knowledge(
        catalogue=default_catalogue().with_extra(extra_catalogue),
        builds=default_build_table().with_extra(extra_builds),
    )
