"""What `emconsole lab` tells people: --help, the ready line, the written emconsole config, the
example lab file. In-process (the subprocess run is in test_lab_wire_cli.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import winrm
from emconsole.backends.lab.configfile import config_text
from emconsole.backends.lab.exchange import spec as exchange_spec
from emconsole.backends.lab.exchange.knowledge import lab_catalogue
from emconsole.backends.lab.fleet import LabFleet
from emconsole.backends.lab.spec import _TOML_KEYS, HOST_FAULTS, TRANSPORT_FAULTS, SpecError, load_lab_toml
from labfixture import exchange_server

from emconsole.cli.lab_cmd import ready_line
from emconsole.cli.main import main
from emconsole.config import Transport, load_config, parse_config
from emconsole.knowledge import BuildTable
from emconsole.models import ArtifactKind, MitigationKind

LabFactory = Callable[..., LabFleet]
EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "lab-example.toml"


def _help(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        main(["lab", "--help"])
    return capsys.readouterr().out


def test_help_documents_every_fault_and_every_lab_file_key(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(capsys)
    assert set(HOST_FAULTS) >= {"ocs-unreachable", "ad-second-hop", "slow", "garbage"}  # registered
    for usage, _ in [*TRANSPORT_FAULTS.values(), *HOST_FAULTS.values()]:
        assert f"  {usage} " in text
    keys = _TOML_KEYS - {"server", "exchange"} | exchange_spec._ORG_KEYS | exchange_spec._SERVER_KEYS
    missing = [k for k in sorted(keys) if k not in text]
    assert missing == [] and "[server.N]" in text and "[exchange]" in text
    assert "winrm.Session(" in text and "lab ready:" in text


def test_example_lab_file_loads_and_scripts_the_organisation() -> None:
    spec = load_lab_toml(EXAMPLE)
    assert (spec.servers, spec.scheme, spec.seed) == (6, "https", 42)
    org = LabFleet(replace(spec, first_port=0)).org  # the organisation exists before the lab starts
    ex2, ex3, ex4 = (org.server(f"LAB-EX0{n}").record for n in (2, 3, 4))
    assert ex2.build.label == "Exchange SE RTM Jul26SU" and ex2.blocked == ["M2", "M2.1.0"]
    assert ex3.build.label == "Exchange 2016 CU23 Oct22SU" and ex3.applied == []  # m1 = "leftover"
    assert ex4.mitigations_enabled is False and org.server("LAB-EX04").faults.ad_second_hop
    assert org.directory.block_match == "full" and org.clock.rate == 60.0
    assert org.server("LAB-EX06").faults.ocs_unreachable  # from the top-level fault spec


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("[server.1]\nbuild = '2019 CU99'\n", "unknown lab build"),
        ("[server.1]\ncolour = 'red'\n", "[server.1]: unknown key 'colour'"),
        ("[exchange]\nblock_match = 'partial'\n", "block_match must be short or full"),
        ("faults = 'slow=soon:1'\n", "slow takes seconds"),
    ],
)
def test_bad_lab_files_are_spec_errors(tmp_path: Path, bad: str, message: str) -> None:
    path = tmp_path / "lab.toml"
    path.write_text("servers = 2\nfirst_port = 0\n" + bad, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        LabFleet(load_lab_toml(path))
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("scheme", "auth"), [("http", "basic"), ("http", "ntlm"), ("https", "basic"), ("https", "certificate")]
)
def test_written_config_passes_config_check_and_reaches_the_lab(
    lab_factory: LabFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str], scheme: str, auth: str
) -> None:
    fleet = lab_factory(servers=2, scheme=scheme, auth=auth)
    path = tmp_path / "emconsole.toml"
    path.write_text(config_text(fleet), encoding="utf-8")
    config, _ = load_config(path, environ={})
    assert [s.endpoint for s in config.servers] == [fleet.endpoint(1), fleet.endpoint(2)]
    server = config.servers[0]
    assert server.transport is Transport(auth) and server.ems.value == "remoteexchange"
    if auth == "certificate":
        assert fleet.client_cert is not None and server.cert_pem == fleet.client_cert[0]
        assert server.password_from is None
    else:
        assert server.password_from == "env:EMCONSOLE_LAB_PASSWORD"
        assert server.username == ("LAB\\labadmin" if auth == "ntlm" else "labadmin")
    assert server.ca_bundle == fleet.ca_path
    extra = {e.id: e for e in config.extra_catalogue}
    assert extra["LAB-SVC1"].kind is MitigationKind.SERVICE
    assert extra["LAB-SVC1"].artifacts[0].kind is ArtifactKind.SERVICE
    assert extra["LAB-POOL1"].artifacts[0].name == "MSExchangeOWACalendarAppPool"
    assert config.knowledge().catalogue.get("LAB-POOL1.1") is not None
    assert fleet.spec.password not in path.read_text()
    assert main(["--config", str(path), "config", "check"]) == 0
    assert f"{path}: valid" in capsys.readouterr().out
    # the ready line's pywinrm call reaches the first server, as printed
    call = ready_line(fleet, str(path), "from $EMCONSOLE_LAB_PASSWORD").split("; pywinrm: ", 1)[1]
    session = eval(call, {"winrm": winrm, "PASSWORD": fleet.spec.password})
    assert session.run_ps("$env:COMPUTERNAME").std_out == b"LAB-EX01\r\n"


def test_builds_the_table_lacks_are_written_as_extra_builds(lab_factory: LabFactory, tmp_path: Path) -> None:
    fleet = lab_factory(servers=3, exchange={"lab_examples": False})
    text = config_text(fleet, builds=BuildTable(()))
    assert "[[extra_catalogue]]" not in text  # the lab does not publish its examples
    config = parse_config(text, "lab")
    lab_builds = {s.record.build.version for s in fleet.org.servers.values()}
    assert {b.build for b in config.extra_builds} == lab_builds
    assert all(config.knowledge().build_info(v).exact for v in lab_builds)
    assert "[[extra_builds]]" not in config_text(fleet)  # the package's table knows them all today


def test_lab_catalogue_follows_what_ocs_publishes(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=1)
    assert [e.id for e in lab_catalogue(fleet.org)] == ["LAB-SVC1", "LAB-POOL1"]
    fleet.org.catalogue.lab_examples = False
    assert lab_catalogue(fleet.org) == ()


def test_the_fixture_scripts_a_fleets_initial_state_precisely(lab_factory: LabFactory) -> None:
    fleet = lab_factory(
        servers=3,
        exchange={"org_mitigations_enabled": False, "block_match": "full", "warm": False},
        per_server={
            1: {"build": "2016 CU23 Oct22SU", "m1": "leftover", "blocked": ["M2.1.0"], "faults": "slow=2"},
            2: {"build": "2019 CU14 Feb26SU", "applied": ["M2.1.0", "LAB-SVC1.1"], "service": "disabled"},
            3: {"exchange": {"mitigations_enabled": False, "data_collection": True}},  # nested form too
        },
        faults="ocs-unreachable:3",
    )
    org = fleet.org
    one, two, three = (exchange_server(fleet, n) for n in (1, 2, 3))
    assert org.directory.org.mitigations_enabled is False and org.directory.block_match == "full"
    assert one.record.build.label == "Exchange 2016 CU23 Oct22SU" and one.record.applied == []
    assert one.iis.rule_names("Default Web Site", "system.webServer/rewrite/rules/rule") == [
        "EEMS M1.1 PowerShell - inbound"  # the leftover rule, not listed as applied
    ]
    assert one.record.blocked == ["M2.1.0"] and one.faults.slow_s == 2.0
    assert two.record.applied == ["M2.1.0", "LAB-SVC1.1"]
    assert two.iis.rule_names("Default Web Site/owa", "system.webServer/rewrite/outboundRules/rule") == [
        "EEMS M2.1 OWA CSP - outbound"
    ]
    service = two.windows.service("MSExchangeMitigation")
    assert service is not None and (service.status, service.start_type) == ("Stopped", "Disabled")
    assert three.record.mitigations_enabled is False and three.record.data_collection is True
    assert three.faults.ocs_unreachable and not two.faults.ocs_unreachable
    assert org.advance(3600) == 2  # EX01 and EX03 run hourly; EX02's service is disabled
