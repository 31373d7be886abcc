"""Transport faults per server, each raising what pywinrm raises against a real server (WINRM.md)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
import winrm
from emconsole.backends.lab.fleet import LabFleet
from emconsole.backends.lab.spec import LabSpec, SpecError, TransportFaults
from labfixture import lab_credentials

LabFactory = Callable[..., LabFleet]


def protocol(fleet: LabFleet, number: int, **kwargs: Any) -> winrm.Protocol:
    user, password = lab_credentials(fleet)
    return winrm.Protocol(
        fleet.endpoint(number), transport="basic", username=user, password=password, proxy=None, **kwargs
    )


def run_ps(fleet: LabFleet, number: int, **kwargs: object) -> winrm.Response:
    s = winrm.Session(
        fleet.endpoint(number), auth=lab_credentials(fleet), transport="basic", proxy=None, **kwargs
    )
    return s.run_ps("Get-Date")


def test_latency_slows_only_its_servers(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=2, faults="latency=60:2")
    start = time.monotonic()
    run_ps(fleet, 1)
    fast = time.monotonic() - start
    start = time.monotonic()
    run_ps(fleet, 2)
    slow = time.monotonic() - start
    assert slow >= 5 * 0.06 > fast


def test_hang_ends_in_read_timeout(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=2, faults="hang:1")
    with pytest.raises(requests.exceptions.ReadTimeout):
        run_ps(fleet, 1, read_timeout_sec=2, operation_timeout_sec=1)
    assert run_ps(fleet, 2).status_code == 0


def test_refused_connection(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=2, faults="refuse:2")
    with pytest.raises(requests.exceptions.ConnectionError):
        run_ps(fleet, 2)


def test_http_error_with_html_body(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=1, faults="http-error=503")
    with pytest.raises(winrm.exceptions.WinRMTransportError) as info:
        run_ps(fleet, 1)
    assert info.value.code == 503 and "Service Unavailable" in info.value.response_text


def test_reset_mid_response(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=1, faults="reset")
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="Connection reset by peer"):
        run_ps(fleet, 1)


def test_expired_shell_answers_invalid_selectors(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=1, faults="expire=0.2")
    p = protocol(fleet, 1)
    shell = p.open_shell()
    time.sleep(0.3)
    with pytest.raises(winrm.exceptions.WSManFaultError) as info:
        p.run_command(shell, "powershell -encodedcommand AAAA")
    assert info.value.wsman_fault_code == 2150858843
    assert fleet.counters.snapshot()["open_shells"] == 0


def test_shell_quota(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=1, faults="quota=2")
    p = protocol(fleet, 1)
    shells = [p.open_shell(), p.open_shell()]
    with pytest.raises(winrm.exceptions.WSManFaultError) as info:
        p.open_shell()
    assert info.value.wsman_fault_code == 2150859173
    assert "maximum number of 2 concurrent shells" in info.value.reason
    p.close_shell(shells[0], close_session=False)
    p.close_shell(p.open_shell(), close_session=False)
    p.close_shell(shells[1])


def test_default_quota_is_max_shells_per_user_30(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=1)
    p = protocol(fleet, 1)
    shells = [p.open_shell() for _ in range(30)]
    with pytest.raises(winrm.exceptions.WSManFaultError):
        p.open_shell()
    for shell in shells:
        p.close_shell(shell, close_session=False)


def test_fault_spec_syntax() -> None:
    spec = LabSpec(servers=10, seed=7, faults="hang:3,7; latency=200:1-5; tls=expired:*; quota=5:20%")
    servers = spec.server_specs(20000)
    assert [s.name for s in servers[:2]] == ["LAB-EX01", "LAB-EX02"]
    assert servers[2].faults.hang and servers[6].faults.hang and not servers[3].faults.hang
    assert servers[4].faults.latency_s == 0.2 and servers[5].faults.latency_s == 0.0
    assert all(s.faults.tls == "expired" for s in servers)
    assert sum(s.faults.max_shells == 5 for s in servers) == 2
    assert servers == LabSpec(servers=10, seed=7, faults=spec.faults).server_specs(20000)  # the seed decides
    assert LabSpec(servers=100).server_name(7) == "LAB-EX007"
    assert TransportFaults().max_shells == 30


@pytest.mark.parametrize(
    "bad", ["nosuch", "hang:11", "tls=sideways", "latency=fast", "http-error=404", "hang:x"]
)
def test_bad_fault_specs_are_refused(bad: str) -> None:
    with pytest.raises(SpecError):
        LabSpec(servers=10, faults=bad).validate()
