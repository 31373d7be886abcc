"""Start a lab of a given shape in-process for a test, and always tear it down.

    def test_x(lab_factory):
        fleet = lab_factory(servers=2, auth="ntlm", faults="hang:2")   # any LabSpec field
        session = winrm.Session(fleet.endpoint(1), auth=lab_credentials(fleet), transport="ntlm", proxy=None)

``host_factory=`` plugs in another PowerShellHost; ``first_port`` defaults to 0 (a free range).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from emconsole.backends.lab.fleet import HostFactory, LabFleet
from emconsole.backends.lab.spec import LabSpec


def start_lab(host_factory: HostFactory | None = None, **fields: Any) -> LabFleet:
    """A started fleet; the caller stops it (or uses it as a context manager)."""
    fields.setdefault("first_port", 0)
    fields.setdefault("servers", 2)
    return LabFleet(LabSpec(**fields), host_factory=host_factory).start()


def lab_credentials(fleet: LabFleet) -> tuple[str, str]:
    """The account the lab accepts."""
    return fleet.spec.username, fleet.spec.password


@pytest.fixture
def lab_factory() -> Iterator[Callable[..., LabFleet]]:
    """Call it with LabSpec fields (and ``host_factory=``) to start labs; all stop after the test."""
    started: list[LabFleet] = []

    def factory(host_factory: HostFactory | None = None, **fields: Any) -> LabFleet:
        fleet = start_lab(host_factory, **fields)
        started.append(fleet)
        return fleet

    yield factory
    for fleet in started:
        fleet.stop()
