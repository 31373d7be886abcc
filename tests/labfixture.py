"""Start a lab of a given shape in-process for a test, and always tear it down.

By default every server runs the emulated Exchange organisation; ``fleet.org`` is that
organisation (state to assert on, the virtual clock to advance). Any ``LabSpec`` field is a keyword:

    def test_x(lab_factory):
        fleet = lab_factory(
            servers=3, seed=1, auth="ntlm", faults="hang:3",        # transport + host faults
            exchange={"block_match": "full",                        # organisation keys, and defaults
                      "org_mitigations_enabled": True,              # for every server's keys
                      "warm": False},
            per_server={2: {"build": "2016 CU23 Oct22SU", "m1": "leftover", "applied": ["M2.1.0"],
                            "blocked": ["M2"], "service": "stopped", "mitigations_enabled": False,
                            "faults": "ocs-unreachable;slow=3"}},
        )
        session = winrm.Session(fleet.endpoint(2), auth=lab_credentials(fleet), transport="ntlm", proxy=None)
        fleet.org.advance(3600)                                     # the hourly EM run happens
        assert exchange_server(fleet, 2).record.blocked == ["M2"]

Keys: ``backends/lab/exchange/spec.py`` (Exchange), ``backends/lab/spec.py`` (faults, wire).
``host_factory=stub_host`` gives the wire's stub (knows no command); ``first_port`` defaults to 0
(a free range), ``servers`` to 2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from emconsole.backends.lab.exchange.org import LabServer
from emconsole.backends.lab.fleet import HostFactory, LabFleet
from emconsole.backends.lab.host import PowerShellHost
from emconsole.backends.lab.spec import LabSpec, ServerSpec
from emconsole.backends.lab.wire.stub_host import StubHost


def stub_host(_server: ServerSpec) -> PowerShellHost:
    """The wire's stub host for every server: parses, then answers "is not recognized"."""
    return StubHost()


def start_lab(host_factory: HostFactory | None = None, **fields: Any) -> LabFleet:
    """A started fleet; the caller stops it (or uses it as a context manager)."""
    fields.setdefault("first_port", 0)
    fields.setdefault("servers", 2)
    return LabFleet(LabSpec(**fields), host_factory=host_factory).start()


def lab_credentials(fleet: LabFleet) -> tuple[str, str]:
    """The account the lab accepts."""
    return fleet.spec.username, fleet.spec.password


def exchange_server(fleet: LabFleet, server: int | str) -> LabServer:
    """The emulated server behind a lab server (by number or name): AD record, Windows, IIS, events."""
    return fleet.org.server(fleet.server(server).name)


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
