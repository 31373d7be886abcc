"""Plain pywinrm (no emconsole client code) against the lab fleet with the Exchange organisation."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import winrm
from emconsole.backends.lab.exchange.lab import ExchangeHostFactory
from emconsole.backends.lab.fleet import LabFleet
from emconsole.backends.lab.spec import LabSpec
from labfixture import lab_credentials, lab_factory  # noqa: F401  (pytest fixture)

EMS = "Add-PSSnapin Microsoft.Exchange.Management.PowerShell.SnapIn\n"


def _start(lab_factory: Callable[..., LabFleet], **fields: Any) -> tuple[LabFleet, ExchangeHostFactory]:  # noqa: F811
    factory = ExchangeHostFactory(LabSpec(**{"servers": 2, "first_port": 0, **fields}))
    return lab_factory(host_factory=factory, **fields), factory


def _session(fleet: LabFleet, number: int) -> winrm.Session:
    return winrm.Session(fleet.endpoint(number), auth=lab_credentials(fleet), transport="basic", proxy=None)


def test_block_through_pywinrm_is_seen_from_the_other_server(lab_factory: Callable[..., LabFleet]) -> None:  # noqa: F811
    fleet, factory = _start(lab_factory, servers=2)
    first, second = _session(fleet, 1), _session(fleet, 2)
    name2 = fleet.spec.server_name(2)
    result = first.run_ps(EMS + f"Set-ExchangeServer -Identity {name2} -MitigationsBlocked @('M2')")
    assert result.status_code == 0, result.std_err
    read = second.run_ps(
        EMS + "@{ b = @((Get-ExchangeServer -Identity $env:COMPUTERNAME).MitigationsBlocked) }"
        " | ConvertTo-Json -Compress"
    )
    assert json.loads(read.std_out.decode()) == {"b": ["M2"]}
    factory.org.advance(3600)
    events = second.run_ps(
        "Get-WinEvent -FilterHashtable @{LogName='Application'; ProviderName="
        "'MSExchange Mitigation Service'} -MaxEvents 1 | Select-Object Id | ConvertTo-Json"
    )
    assert json.loads(events.std_out.decode())["Id"] in (1005, 1008)


def test_ad_second_hop_fault_through_pywinrm(lab_factory: Callable[..., LabFleet]) -> None:  # noqa: F811
    fleet, _ = _start(lab_factory, servers=1, faults="ad-second-hop")
    result = _session(fleet, 1).run_ps(EMS + "Get-ExchangeServer")
    assert result.status_code == 1 and b"ADOperationException" in result.std_err
