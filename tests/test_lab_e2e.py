"""Issue #4's "done when", over the wire: plain pywinrm (no emconsole client code) against the lab's
Exchange organisation — documented cmdlets change and read state as on a server, every
PowerShell-level fault, PowerShell's own refusals, and the EM service's runs on the virtual clock.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import winrm
from emconsole.backends.lab.exchange.clock import DEFAULT_START
from emconsole.backends.lab.fleet import LabFleet
from labfixture import exchange_server, lab_credentials

LabFactory = Callable[..., LabFleet]
EMS = "Add-PSSnapin Microsoft.Exchange.Management.PowerShell.SnapIn\n"
OWA = "IIS:\\Sites\\Default Web Site\\owa"
M2_RULE = "EEMS M2.1 OWA CSP - outbound"
# ``-InputObject @(...)`` keeps a list a list (piped, 5.1 unwraps one element and prints nothing for none)
EVENTS = (
    "ConvertTo-Json -Compress -InputObject @(Get-WinEvent -FilterHashtable @{LogName='Application'; "
    "ProviderName='MSExchange Mitigation Service'} -MaxEvents 50 | ForEach-Object { [pscustomobject]@{ "
    "id = $_.Id; time = $_.TimeCreated.ToUniversalTime().ToString('o'); message = [string]$_.Message } })"
)
OUTBOUND_RULES = (
    f"ConvertTo-Json -Compress -InputObject @(Get-WebConfiguration -PSPath '{OWA}' "
    "-Filter 'system.webServer/rewrite/outboundRules/rule' | ForEach-Object { [string]$_.name })"
)


def run_ps(fleet: LabFleet, server: int, script: str, **kwargs: Any) -> winrm.Response:
    session = winrm.Session(
        fleet.endpoint(server), auth=lab_credentials(fleet), transport="basic", proxy=None, **kwargs
    )
    return session.run_ps(script)


def read(fleet: LabFleet, server: int, script: str) -> Any:
    """Run a script that prints one JSON document; its value (lists always as lists)."""
    result = run_ps(fleet, server, script)
    assert result.status_code == 0, result.std_err.decode()
    return json.loads(result.std_out.decode("utf-8"))


def events(fleet: LabFleet, server: int) -> list[dict[str, Any]]:
    """The EM service's events, newest first."""
    found: list[dict[str, Any]] = read(fleet, server, EVENTS)
    return found


def lab_time(offset: timedelta) -> str:
    """A lab time as ``ToString('o')`` prints it in UTC."""
    return (DEFAULT_START + offset).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


# -- the documented cmdlets change and read state as on a server ----------------------------------


def test_a_block_set_from_one_server_is_read_from_every_server(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=3, exchange={"build": "2019 CU15 Feb26SU"})
    done = run_ps(
        fleet, 1, EMS + "Set-ExchangeServer -Identity LAB-EX02 -MitigationsBlocked @('M2','M2.1.0')"
    )
    assert (done.status_code, done.std_out, done.std_err) == (0, b"", b"")
    script = (
        EMS + "ConvertTo-Json @((Get-ExchangeServer -Identity lab-ex02.contoso.local).MitigationsBlocked)"
    )
    assert read(fleet, 3, script) == read(fleet, 2, script) == ["M2", "M2.1.0"]
    assert exchange_server(fleet, 2).record.blocked == ["M2", "M2.1.0"]
    # blocking stops future application; it does not remove what is applied
    applied = read(fleet, 2, EMS + "ConvertTo-Json @((Get-ExchangeServer LAB-EX02).MitigationsApplied)")
    assert "M2.1.0" in applied and read(fleet, 2, OUTBOUND_RULES) == [M2_RULE]
    # the list replaces the old one: @() clears it
    run_ps(fleet, 3, EMS + "Set-ExchangeServer -Identity LAB-EX02 -MitigationsBlocked @()")
    assert read(fleet, 1, EMS + "(Get-ExchangeServer LAB-EX02).MitigationsBlocked | ConvertTo-Json") is None


def test_the_organisation_switch_from_any_server_stops_application_everywhere(
    lab_factory: LabFactory,
) -> None:
    fleet = lab_factory(servers=2, exchange={"build": "2019 CU15 Feb26SU"})
    off = run_ps(fleet, 2, EMS + "Set-OrganizationConfig -MitigationsEnabled $false")
    assert off.status_code == 0, off.std_err
    assert read(fleet, 1, EMS + "(Get-OrganizationConfig).MitigationsEnabled | ConvertTo-Json") is False
    remove = (
        f"Remove-WebConfigurationProperty -PSPath '{OWA}' -Filter 'system.webServer/rewrite/outboundRules' "
        f"-Name '.' -AtElement @{{name='{M2_RULE}'}}"
    )
    assert run_ps(fleet, 1, remove).status_code == 0
    fleet.org.advance(timedelta(hours=1))
    assert read(fleet, 1, OUTBOUND_RULES) == []  # not applied again while the organisation is off
    newest = events(fleet, 1)[0]
    assert newest["id"] == 1005 and "disabled at the organization level" in newest["message"]
    assert run_ps(fleet, 1, EMS + "Set-OrganizationConfig -MitigationsEnabled $true").status_code == 0
    fleet.org.advance(timedelta(hours=1))
    assert read(fleet, 1, OUTBOUND_RULES) == [M2_RULE]
    assert [e["id"] for e in events(fleet, 1)[:2]] == [1005, 1006]


@pytest.mark.parametrize(
    ("block_match", "blocked", "comes_back"),
    [("short", "", True), ("short", "'M2'", False), ("full", "'M2'", True), ("full", "'M2.1.0'", False)],
)
def test_a_deleted_rule_comes_back_at_the_next_run_unless_blocked(
    lab_factory: LabFactory, block_match: str, blocked: str, comes_back: bool
) -> None:
    fleet = lab_factory(servers=1, exchange={"build": "2019 CU15 Feb26SU", "block_match": block_match})
    assert read(fleet, 1, OUTBOUND_RULES) == [M2_RULE]
    script = EMS + (
        f"Set-ExchangeServer -Identity $env:COMPUTERNAME -MitigationsBlocked @({blocked})\n"
        f"Remove-WebConfigurationProperty -PSPath '{OWA}' -Filter 'system.webServer/rewrite/outboundRules' "
        f"-Name '.' -AtElement @{{name='{M2_RULE}'}}\n" + OUTBOUND_RULES
    )
    assert read(fleet, 1, script) == []
    assert fleet.org.advance(timedelta(hours=1)) == 1  # one hourly run
    assert read(fleet, 1, OUTBOUND_RULES) == ([M2_RULE] if comes_back else [])


# -- the EM service on the virtual clock --------------------------------------------------------


def test_a_restart_runs_the_check_ten_minutes_later_and_then_hourly(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=1, exchange={"build": "2019 CU15 Feb26SU"})
    pid = "(Get-CimInstance -ClassName Win32_Service -Filter \"Name='MSExchangeMitigation'\").ProcessId"
    before = read(fleet, 1, pid)
    after = read(fleet, 1, f"Restart-Service -Name 'MSExchangeMitigation'\n{pid}")
    assert isinstance(after, int) and after != before
    seen = len(events(fleet, 1))
    fleet.org.advance(timedelta(minutes=9, seconds=59))
    assert len(events(fleet, 1)) == seen
    fleet.org.advance(timedelta(seconds=1))
    fleet.org.advance(timedelta(hours=1))
    newest = events(fleet, 1)
    checks = [e for e in newest[: len(newest) - seen] if e["id"] == 1005]
    assert [e["time"] for e in checks] == [lab_time(timedelta(minutes=70)), lab_time(timedelta(minutes=10))]
    assert read(fleet, 1, "(Get-Date).ToUniversalTime().ToString('o') | ConvertTo-Json") == lab_time(
        timedelta(minutes=70)
    )


def test_build_rules_decide_what_each_server_gets(lab_factory: LabFactory) -> None:
    fleet = lab_factory(
        servers=3,
        exchange={"warm": False},
        per_server={
            1: {"build": "2016 CU23 Oct22SU", "m1": "applied"},  # cannot fetch since January 2025
            2: {"build": "Exchange SE RTM Jul26SU"},  # fixed: M2 does not apply
            3: {"build": "2019 CU14 Feb26SU"},
        },
    )
    fleet.org.advance(timedelta(minutes=10))  # the first check after the service started
    old = events(fleet, 1)[0]
    assert old["id"] == 1008 and "remote certificate is invalid" in old["message"]

    def statuses(server: int) -> dict[str, str]:
        rows = read(
            fleet,
            server,
            EMS + "ConvertTo-Json -Compress -InputObject @(& (Join-Path $env:ExchangeInstallPath "
            f"'Scripts\\Get-Mitigations.ps1') -Identity LAB-EX0{server})",
        )
        return {r["ID"]: r["Status"] for r in rows}

    assert statuses(1) == {"M1.1": "Applied"}  # an old application, never newly applied
    assert "M2.1.0" not in statuses(2) and statuses(3)["M2.1.0"] == "Applied"
    assert statuses(3)["LAB-SVC1.1"] == "Applied"  # the lab-only service example fits CU14
    state = "$s = Get-Service MSExchangeImap4; [string]$s.Status; [string]$s.StartType"
    assert run_ps(fleet, 3, state).std_out == b"Stopped\r\nDisabled\r\n"


# -- PowerShell-level faults, each over the wire --------------------------------------------------


def test_ems_unavailable_fails_both_ways_of_loading_the_shell(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=2, faults="ems-unavailable:1")
    snapin = run_ps(fleet, 1, EMS + "Get-ExchangeServer")
    err = snapin.std_err.decode()
    assert snapin.status_code == 1 and snapin.std_out == b""
    assert "snap-in 'Microsoft.Exchange.Management.PowerShell.SnapIn' is not installed" in err
    assert "AddPSSnapInRead" in err and "The term 'Get-ExchangeServer' is not recognized" in err
    remote = run_ps(fleet, 1, ". (Join-Path $env:ExchangeInstallPath 'bin\\RemoteExchange.ps1')")
    assert remote.status_code == 1 and "RemoteExchange.ps1' is not recognized" in remote.std_err.decode()
    assert run_ps(fleet, 2, EMS + "Get-ExchangeServer LAB-EX01 | Out-Null").status_code == 0


def test_ad_second_hop_fails_exchange_cmdlets_only(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=1, faults="ad-second-hop")
    result = run_ps(fleet, 1, EMS + "Get-OrganizationConfig")
    err = result.std_err.decode()
    assert result.status_code == 1 and "Active Directory operation failed on dc01.contoso.local" in err
    assert "ADOperationException" in err
    assert run_ps(fleet, 1, "Get-Service MSExchangeMitigation | Out-Null").status_code == 0


def test_ocs_unreachable_fails_the_connectivity_test_and_logs_1008(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=2, faults="ocs-unreachable:1")
    script = "& (Join-Path $env:ExchangeInstallPath 'Scripts\\Test-MitigationServiceConnectivity.ps1')"
    assert run_ps(fleet, 1, script).std_out.startswith(b"Result: Failed.\r\nMessage: ")
    assert run_ps(fleet, 2, script).std_out.startswith(b"Result: Success.\r\n")
    fleet.org.advance(timedelta(hours=1))
    assert events(fleet, 1)[0]["id"] == 1008 and events(fleet, 2)[0]["id"] == 1005


@pytest.mark.parametrize(
    ("fault", "start_type"), [("service-stopped", "Automatic"), ("service-disabled", "Disabled")]
)
def test_a_stopped_em_service_shows_and_never_runs(
    lab_factory: LabFactory, fault: str, start_type: str
) -> None:
    fleet = lab_factory(servers=1, faults=fault)
    state = "$s = Get-Service MSExchangeMitigation; [string]$s.Status; [string]$s.StartType"
    assert run_ps(fleet, 1, state).std_out == f"Stopped\r\n{start_type}\r\n".encode()
    assert fleet.org.advance(timedelta(hours=3)) == 0


def test_garbage_and_truncated_output(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=3, faults="garbage:1;truncate:2")
    text = "'abcdefghijklmnopqrstuvwxyz0123456789'"
    good = run_ps(fleet, 3, text).std_out
    assert good == b"abcdefghijklmnopqrstuvwxyz0123456789\r\n"
    garbage = run_ps(fleet, 1, text)
    assert garbage.status_code == 0 and len(garbage.std_out) >= 64 and garbage.std_out != good
    truncated = run_ps(fleet, 2, text).std_out
    assert truncated == good[: len(good) // 2]


def test_a_slow_command_is_received_again_until_it_ends(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=1, faults="slow=1.5")
    started = time.monotonic()
    result = run_ps(fleet, 1, "$env:COMPUTERNAME", operation_timeout_sec=1, read_timeout_sec=5)
    assert result.std_out == b"LAB-EX01\r\n" and time.monotonic() - started >= 1.5
    assert fleet.counters.snapshot()["faults"]["TimedOut"] >= 1


def test_a_hung_command_never_answers_within_the_operation_timeout(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=1, faults="slow=inf")
    user, password = lab_credentials(fleet)
    p = winrm.Protocol(
        fleet.endpoint(1),
        transport="basic",
        username=user,
        password=password,
        proxy=None,
        operation_timeout_sec=1,
        read_timeout_sec=3,
    )
    shell = p.open_shell()
    command = p.run_command(
        shell, "powershell.exe", ["-EncodedCommand", "JABlAG4AdgA6AA=="], skip_cmd_shell=True
    )
    with pytest.raises(winrm.exceptions.WinRMOperationTimeoutError):
        p.get_command_output_raw(shell, command)
    p.cleanup_command(shell, command)
    p.close_shell(shell)
    assert fleet.counters.snapshot()["running_commands"] == 0


# -- PowerShell's own refusals --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "texts"),
    [
        (
            "Get-Frobnicator -Name 'x'",
            [
                "The term 'Get-Frobnicator' is not recognized as the name of a cmdlet, function, "
                "script file, or operable program.",
                "CommandNotFoundException",
            ],
        ),
        (
            EMS + "Get-ExchangeServer -Frobnicate 1",
            [
                "A parameter cannot be found that matches parameter name 'Frobnicate'.",
                "NamedParameterNotFound,Get-ExchangeServer",
            ],
        ),
        (
            EMS + "Get-ExchangeServer -Identity EX99",
            [
                "The operation couldn't be performed because object 'EX99' couldn't be found on "
                "'dc01.contoso.local'.",
                "ManagementObjectNotFoundException",
            ],
        ),
        ("while ($true) { 1 }", ["not supported by the lab's PowerShell", "ParseException"]),
    ],
)
def test_powershell_refuses_with_its_own_messages(
    lab_factory: LabFactory, script: str, texts: list[str]
) -> None:
    fleet = lab_factory(servers=1)
    result = run_ps(fleet, 1, script)
    assert result.status_code == 1 and result.std_out == b""
    err = result.std_err.decode()
    assert [t for t in texts if t not in err] == []
    assert "#< CLIXML" not in err  # pywinrm understood the CLIXML error stream


def test_a_syntax_error_runs_nothing(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=1)
    script = (
        EMS + "Set-ExchangeServer -Identity $env:COMPUTERNAME -MitigationsBlocked @('M1')\nif ($x { 'y' }"
    )
    result = run_ps(fleet, 1, script)
    assert result.status_code == 1 and "ParseException" in result.std_err.decode()
    assert exchange_server(fleet, 1).record.blocked == []  # the first statement did not run either


def test_smart_quotes_are_quotes_and_values_keep_them(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=1)
    script = "‘a–b’"  # a string in smart quotes whose value holds an en dash
    assert run_ps(fleet, 1, script).std_out == b"a?b\r\n"  # code page 437, pywinrm's default
    user, password = lab_credentials(fleet)
    p = winrm.Protocol(fleet.endpoint(1), transport="basic", username=user, password=password, proxy=None)
    shell = p.open_shell(codepage=65001)
    encoded = base64.b64encode(script.encode("utf-16-le")).decode()
    command = p.run_command(shell, "powershell.exe", ["-EncodedCommand", encoded], skip_cmd_shell=True)
    out, _err, code = p.get_command_output(shell, command)
    p.cleanup_command(shell, command)
    p.close_shell(shell)
    assert (out.decode("utf-8"), code) == ("a–b\r\n", 0)


def test_the_clock_is_the_servers_clock(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=1, exchange={"clock_start": "2026-09-01T12:00:00Z"})
    fleet.org.advance(timedelta(days=1, minutes=5))
    stamp = read(fleet, 1, "(Get-Date).ToUniversalTime().ToString('o') | ConvertTo-Json")
    assert datetime.fromisoformat(stamp.replace("0Z", "+00:00")) == datetime(
        2026, 9, 2, 12, 5, tzinfo=timezone.utc
    )
