"""The lab's Exchange organisation, run through ExchangeHost and the real interpreter (no wire)."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from emconsole.backends.lab.exchange.builder import build_org
from emconsole.backends.lab.exchange.catalogue import build_eocs, parse_eocs
from emconsole.backends.lab.exchange.host import ExchangeHost
from emconsole.backends.lab.exchange.org import Organisation
from emconsole.backends.lab.exchange.spec import org_spec
from emconsole.backends.lab.host import CommandRequest, HostResult, ShellContext
from emconsole.backends.lab.pwsh.api import PSEnum, PSObject

EMS = "Add-PSSnapin Microsoft.Exchange.Management.PowerShell.SnapIn\n"
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
M2_RULE = "EEMS M2.1 OWA CSP - outbound"
OWA = "IIS:\\Sites\\Default Web Site\\owa"


def make_org(servers: dict[str, dict[str, Any]], **org: Any) -> Organisation:
    from emconsole.backends.lab.exchange.spec import server_spec

    specs = {
        name: server_spec({k: v for k, v in s.items() if k != "faults"}, s.get("faults"))
        for name, s in servers.items()
    }
    return build_org(org_spec(org, specs, seed=7))


def run(org: Organisation, server: str, script: str, codepage: int = 65001) -> HostResult:
    return ExchangeHost(org).run(
        CommandRequest("powershell.exe", script), ShellContext(server, "s1", codepage)
    )


def out(org: Organisation, server: str, script: str) -> Any:
    result = run(org, server, script)
    assert result.exit_code == 0, result.stderr.decode()
    return json.loads(result.stdout.decode())


def fleet(**org: Any) -> Organisation:
    return make_org(
        {
            "EX01": {"build": "2019 CU15 Feb26SU"},
            "EX02": {"build": "2019 CU14 Feb26SU"},
            "EX03": {"build": "Exchange SE RTM Feb26SU"},
        },
        **org,
    )


def test_block_from_one_server_is_visible_from_another() -> None:
    org = fleet()
    result = run(org, "EX01", EMS + "Set-ExchangeServer -Identity EX02 -MitigationsBlocked @('M2','M2.1.0')")
    assert result.exit_code == 0, result.stderr
    seen = out(
        org,
        "EX03",
        EMS + "@{ b = @((Get-ExchangeServer -Identity ex02).MitigationsBlocked) } | ConvertTo-Json -Compress",
    )
    assert seen == {"b": ["M2", "M2.1.0"]}
    # blocking does not remove what is applied
    assert "M2.1.0" in org.directory.find("EX02").applied


def test_unknown_identity_is_management_object_not_found() -> None:
    result = run(fleet(), "EX01", EMS + "Get-ExchangeServer -Identity EX99")
    assert result.exit_code == 1
    err = result.stderr.decode()
    assert "couldn't be found on 'dc01.contoso.local'" in err and "ManagementObjectNotFoundException" in err


def _delete_m2(org: Organisation, server: str) -> None:
    script = (
        f"Remove-WebConfigurationProperty -PSPath '{OWA}' -Filter system.webServer/rewrite/outboundRules "
        f"-Name '.' -AtElement @{{name='{M2_RULE}'}}"
    )
    assert run(org, server, script).exit_code == 0


def _m2_rules(org: Organisation, server: str) -> list[str]:
    return org.server(server).iis.rule_names(
        "Default Web Site/owa", "system.webServer/rewrite/outboundRules/rule"
    )


@pytest.mark.parametrize(
    ("mode", "blocked", "comes_back"),
    [("short", [], True), ("short", ["M2"], False), ("full", ["M2"], True), ("full", ["M2.1.0"], False)],
)
def test_deleted_rule_comes_back_at_next_run_unless_blocked(
    mode: str, blocked: list[str], comes_back: bool
) -> None:
    org = fleet(block_match=mode)
    assert _m2_rules(org, "EX01") == [M2_RULE]
    if blocked:
        ids = ",".join(f"'{b}'" for b in blocked)
        assert run(org, "EX02", EMS + f"Set-ExchangeServer EX01 -MitigationsBlocked @({ids})").exit_code == 0
    _delete_m2(org, "EX01")
    assert _m2_rules(org, "EX01") == []
    assert org.advance(3600) >= 1
    assert _m2_rules(org, "EX01") == ([M2_RULE] if comes_back else [])


def test_org_switch_off_stops_application_everywhere() -> None:
    org = fleet()
    assert run(org, "EX03", EMS + "Set-OrganizationConfig -MitigationsEnabled $false").exit_code == 0
    assert out(org, "EX01", EMS + "(Get-OrganizationConfig).MitigationsEnabled | ConvertTo-Json") is False
    _delete_m2(org, "EX01")
    org.advance(3600)
    assert _m2_rules(org, "EX01") == []
    last = org.server("EX01").windows.events[-1]
    assert last.event_id == 1005 and "organization" in last.message


def test_restart_runs_ten_minutes_later_with_new_process_id() -> None:
    org = fleet()
    cim = (
        EMS + "Get-CimInstance -ClassName Win32_Service -Filter \"Name='MSExchangeMitigation'\" | "
        "Select-Object Name, State, StartMode, ProcessId | ConvertTo-Json"
    )
    before = out(org, "EX01", cim)
    _delete_m2(org, "EX01")
    assert run(org, "EX01", "Restart-Service MSExchangeMitigation").exit_code == 0
    after = out(org, "EX01", cim)
    assert (
        after["State"] == "Running"
        and after["StartMode"] == "Auto"
        and after["ProcessId"] != before["ProcessId"]
    )
    org.advance(9 * 60)
    assert _m2_rules(org, "EX01") == []
    org.advance(60)
    assert _m2_rules(org, "EX01") == [M2_RULE]


def test_old_build_cannot_fetch_and_keeps_m1_as_old_application() -> None:
    org = make_org(
        {"OLD": {"build": "2016 CU23 Oct22SU"}, "LEFT": {"build": "2016 CU23 Aug22SU", "m1": "leftover"}}
    )
    assert org.directory.find("OLD").applied == ["M1.1"]
    assert org.directory.find("LEFT").applied == []
    rules = out(
        org,
        "LEFT",
        "Get-WebConfiguration -PSPath 'IIS:\\Sites\\Default Web Site' "
        "-Filter 'system.webServer/rewrite/rules/rule' | Select-Object name | ConvertTo-Json",
    )
    assert rules == {"name": "EEMS M1.1 PowerShell - inbound"}
    org.advance(3600)
    events = org.server("OLD").windows.events
    assert events[-1].event_id == 1008 and "certificate" in events[-1].message
    text = run(
        org,
        "OLD",
        EMS + "& (Join-Path $env:ExchangeInstallPath 'Scripts\\Test-MitigationServiceConnectivity.ps1')",
    )
    assert "Result: Failed." in text.stdout.decode()


def test_get_mitigations_rows_and_events() -> None:
    org = fleet()
    rows = out(
        org,
        "EX02",
        EMS + "& (Join-Path $env:ExchangeInstallPath 'Scripts\\Get-Mitigations.ps1') "
        "-Identity EX02 | ConvertTo-Json",
    )
    assert {(r["ID"], r["Type"], r["Status"]) for r in rows} >= {
        ("M2.1.0", "IISUrlRewrite", "Applied"),
        ("LAB-SVC1.1", "Service", "Applied"),
    }
    assert all(r["Server"] == "EX02" for r in rows)
    events = out(
        org,
        "EX02",
        "Get-WinEvent -FilterHashtable @{LogName='Application'; "
        "ProviderName='MSExchange Mitigation Service'} -MaxEvents 2 | Select-Object Id | ConvertTo-Json",
    )
    assert [e["Id"] for e in events] == [1005, 1006]


def test_get_winevent_without_match_errors() -> None:
    org = fleet()
    result = run(org, "EX01", "Get-WinEvent -FilterHashtable @{LogName='Application'; Id=4242} -MaxEvents 1")
    assert "No events were found that match the specified selection criteria." in result.stderr.decode()
    assert "NoMatchingEventsFound" in result.stderr.decode()


def test_backup_files_round_trip() -> None:
    org = fleet()
    script = (
        "$dir = Join-Path $env:ProgramData 'emconsole\\backups'\n"
        "New-Item -ItemType Directory -Force -Path $dir | Out-Null\n"
        "Set-Content -Path (Join-Path $dir 'b1.json') -Value '{\"a\":1}' -Encoding UTF8\n"
        "@{ exists = (Test-Path (Join-Path $dir 'b1.json')); raw = (Get-Content -Raw -Path "
        "(Join-Path $dir 'b1.json')); names = @(Get-ChildItem -Path $dir -Filter '*.json' | "
        "ForEach-Object { $_.Name }) } | ConvertTo-Json -Compress"
    )
    assert out(org, "EX01", script) == {"exists": True, "raw": '{"a":1}\r\n', "names": ["b1.json"]}


# -- faults ---------------------------------------------------------------------------------------
def test_fault_ems_unavailable() -> None:
    org = make_org({"EX01": {"faults": {"ems-unavailable": ""}}})
    err = run(org, "EX01", "$ErrorActionPreference='Stop'\n" + EMS).stderr.decode()
    assert "AddPSSnapInRead" in err and "is not installed on this computer" in err
    result = run(org, "EX01", ". (Join-Path $env:ExchangeInstallPath 'bin\\RemoteExchange.ps1')")
    assert result.exit_code == 1 and "CommandNotFoundException" in result.stderr.decode()


def test_remote_exchange_defines_exscripts_only_then() -> None:
    org = fleet()
    assert out(org, "EX01", EMS + "$null -eq $exscripts | ConvertTo-Json") is True
    script = (
        ". (Join-Path $env:ExchangeInstallPath 'bin\\RemoteExchange.ps1')\n"
        "Connect-ExchangeServer -Auto -ClientApplication:ManagementShell | Out-Null\n"
        "@{ s = $exscripts; n = @(Get-ExchangeServer).Count } | ConvertTo-Json -Compress"
    )
    result = run(org, "EX01", script)
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout.decode().splitlines()[-1])
    assert doc == {"s": "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\Scripts\\", "n": 3}


def test_fault_ad_second_hop() -> None:
    org = make_org({"EX01": {"faults": {"ad-second-hop": ""}}})
    err = run(org, "EX01", EMS + "Get-ExchangeServer").stderr.decode()
    assert "ADOperationException" in err and "Active Directory operation failed on dc01.contoso.local" in err


def test_fault_ocs_unreachable() -> None:
    org = make_org({"EX01": {"build": "2019 CU15 Feb26SU", "faults": {"ocs-unreachable": ""}}})
    assert org.server("EX01").windows.events[-1].event_id == 1008
    result = run(
        org, "EX01", EMS + "& (Join-Path $env:ExchangeInstallPath 'Scripts\\Get-Mitigations.ps1') 3>&1"
    )
    assert "Connection with Mitigation Endpoint was not successful." in result.stdout.decode()


@pytest.mark.parametrize("state", ["service-stopped", "service-disabled"])
def test_fault_service_stopped_or_disabled(state: str) -> None:
    org = make_org({"EX01": {"faults": {state: ""}}})
    status = out(
        org, "EX01", "Get-Service MSExchangeMitigation | Select-Object Status, StartType | ConvertTo-Json"
    )
    assert status == {"Status": 1, "StartType": 4 if state == "service-disabled" else 2}
    assert org.advance(7200) == 0
    result = run(org, "EX01", "Start-Service MSExchangeMitigation")
    assert (result.exit_code == 0) == (state == "service-stopped")


def test_faults_garbage_truncate_slow() -> None:
    org = make_org(
        {
            "G": {"faults": {"garbage": ""}},
            "T": {"faults": {"truncate": ""}},
            "S": {"faults": {"slow": "12.5"}},
            "H": {"faults": {"slow": "inf"}},
        }
    )
    script = "'abcdefghijklmnopqrstuvwxyz'"
    assert run(org, "T", script).stdout == b"abcdefghijklmn"  # half of 28 bytes
    garbage = run(org, "G", script).stdout
    assert garbage != b"abcdefghijklmnopqrstuvwxyz\r\n" and len(garbage) >= 64
    assert run(org, "S", script).duration_s == 12.5
    assert math.isinf(run(org, "H", script).duration_s)


def test_codepage_437_replaces_what_it_cannot_encode() -> None:
    assert run(fleet(), "EX01", "'a€b'", codepage=437).stdout == b"a?b\r\n"


# -- fidelity to the captures -------------------------------------------------------------------------
_NS = "{http://schemas.microsoft.com/powershell/2004/04}"


def _captured(name: str) -> list[tuple[str, str, str]]:
    """(property, CLIXML tag, first type name) of the first object in a capture."""
    root = ET.parse(REFERENCE / name).getroot()
    types = {tn.get("RefId"): tn[0].text or "" for tn in root.iter(f"{_NS}TN")}
    rows = []
    for prop in root.findall(f"./{_NS}Obj/{_NS}Props/*"):
        tag = prop.tag.replace(_NS, "")
        type_name = ""
        if tag == "Obj":
            tn = prop.find(f"{_NS}TN")
            ref = prop.find(f"{_NS}TNRef")
            type_name = (
                (tn[0].text or "") if tn is not None else types[ref.get("RefId") if ref is not None else None]
            )
            if prop.find(f"{_NS}LST") is not None:
                tag = "LST"
        rows.append((prop.get("N") or "", tag, type_name))
    return rows


def _matches(value: Any, tag: str, type_name: str) -> bool:
    if tag in ("Nil", "Ref"):
        return True
    simple = {"S": str, "B": bool, "I32": int, "U32": int, "DT": datetime, "G": str}
    if tag in simple:
        return isinstance(value, simple[tag]) and not (tag in ("I32", "U32") and isinstance(value, bool))
    if tag == "LST":
        return isinstance(value, list)
    if isinstance(value, PSEnum):
        return value.type_name == type_name
    return isinstance(value, PSObject) and value.type_names[0] == type_name


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="reference captures not available")
def test_objects_carry_the_captured_properties_and_types() -> None:
    org = fleet()
    objects = {
        "E19_GetExchangeServer.xml": org.directory.server_object(org.directory.find("EX01")),
        "E19_GetOrganizationConfig.xml": org.directory.org_object(),
    }
    service = org.server("EX01").windows.service("MSExchangeMitigation")
    assert service is not None
    objects["E19_GetServiceMitigation.xml"] = org.server("EX01").windows.service_object(service, ".")
    for capture, obj in objects.items():
        for name, tag, type_name in _captured(capture):
            assert name in obj, f"{capture}: {name} missing"
            assert _matches(obj[name], tag, type_name), (
                f"{capture}: {name} is {obj[name]!r}, captured {tag} {type_name}"
            )


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="reference captures not available")
def test_catalogue_parses_the_real_capture_and_ping1_is_as_captured() -> None:
    root = ET.parse(REFERENCE / "E19_WebRequest_getexchangemitigations.xml").getroot()
    content = next(e.text for e in root.iter() if e.get("N") == "Content" and e.text and "<EOCS" in e.text)
    real = parse_eocs((content or "").replace("_x000D__x000A_", "\r\n"))
    ours = parse_eocs(build_eocs())
    assert real[0] == ours[0]
    assert [e.id for e in ours] == ["PING1", "M1.1", "M2.1.0", "LAB-SVC1.1", "LAB-POOL1.1"]
    assert all(e.lab_only == e.id.startswith("LAB-") for e in ours)


def test_iis_paths_follow_the_sites_applications_as_they_change() -> None:
    from emconsole.backends.lab.exchange.iis import IIS, IISPathError

    iis = IIS()
    assert iis.location("iis:\\sites\\default web site\\OWA\\") == "Default Web Site/owa"
    nspi = "MACHINE/WEBROOT/APPHOST/Exchange Back End/mapi/nspi"
    assert iis.location(nspi) == "Exchange Back End/mapi/nspi"
    assert iis.location("IIS:\\") == "" == iis.location("machine/webroot/apphost/")
    assert iis.location("IIS:\\Sites\\Exchange Back End") == "Exchange Back End"
    for wrong in ("IIS:\\AppPools\\x", "IIS:\\Sites", "C:\\inetpub", "IIS:\\Sites\\Nowhere\\owa"):
        with pytest.raises(IISPathError):
            iis.location(wrong)
    del iis.apps["Default Web Site"]["owa"]
    with pytest.raises(IISPathError):
        iis.location(OWA)
    iis.apps["Default Web Site"]["OWA"] = "DefaultAppPool"
    iis.apps["Default Web Site"]["owa"] = "DefaultAppPool"  # the first one that matches is meant
    assert iis.location(OWA) == "Default Web Site/OWA"
    iis.apps["Default Web Site"] = dict(sorted(iis.apps["Default Web Site"].items(), reverse=True))
    assert iis.location(OWA) == "Default Web Site/owa"  # same paths, another order
    iis.apps["default web site"] = iis.apps.pop("Default Web Site")
    assert iis.location(OWA) == "default web site/owa"


def test_directory_objects_are_fresh_each_time_and_shape_tables_must_be_well_formed() -> None:
    from emconsole.backends.lab.exchange.directory import Directory

    directory = fleet().directory
    first, second = directory.org_object(), directory.org_object()
    assert first["Id"] is first["Identity"] and first["Identity"] is not second["Identity"]
    assert [n for n, _ in first.properties()] == [n for n, _ in second.properties()]
    lists = [name for name, value in first.properties() if isinstance(value, list)]
    assert lists and all(first[name] is not second[name] for name in lists)
    for rows in (
        (("A", "S", ""), ("a", "B", True), ("A", "B", True)),
        (("A", "X", ""),),
        (("Id", "Ref", "Identity"), ("Identity", "S", "")),
    ):
        with pytest.raises(ValueError, match="shape table"):
            Directory._fill(rows, {})


def test_reading_a_filter_iis_cannot_address_is_its_target_error() -> None:
    org = fleet()
    xfilter = "system.webServer/rewrite/rules/rule[@name='a' or @name='b']"
    for command in ("Get-WebConfiguration", "Get-WebConfigurationProperty -Name name"):
        result = run(org, "EX01", f'{command} -PSPath "{OWA}" -Filter "{xfilter}"')
        err = result.stderr.decode().replace("_x000D__x000A_", "")
        assert result.exit_code == 1 and "ConfigurationException" in err, err
        assert "is not found at path 'MACHINE/WEBROOT/APPHOST/Default Web Site/owa'" in err, err


def test_configuration_elements_keep_a_names_first_spelling_and_last_value() -> None:
    from emconsole.backends.lab.exchange.iis import IIS

    iis = IIS()
    iis.config[""] = ET.fromstring(
        "<configuration><system.webServer><rewrite><rules>"
        '<rule name="r" STOPPROCESSING="true" stopProcessing="false"><name /></rule>'
        '<rule name="plain" stopProcessing="true" />'
        "</rules></rewrite></system.webServer></configuration>"
    )
    xfilter = "system.webServer/rewrite/rules/rule"
    odd, plain = (iis.element_object(e, "", xfilter) for e in iis.find("", xfilter))
    names = [name for name, _ in odd.properties()]
    assert names.count("stopProcessing") == 1 and "STOPPROCESSING" not in names
    assert odd["stopProcessing"] is False and isinstance(odd["name"], PSObject)
    assert plain["stopProcessing"] is True and plain["name"] == "plain"
    last = [name for name, _ in plain.properties()][-4:]
    assert last == ["ItemXPath", "PSPath", "Location", "ElementTagName"]
    assert plain["ItemXPath"] == "/" + xfilter
