"""The lab's IIS where the console's real scripts found it unlike a real server, proved with those
scripts (``emconsole.remote``) run through ExchangeHost and the real interpreter.

- ``MACHINE/WEBROOT/APPHOST`` (and ``IIS:\\``) is the server level, applicationHost.config.
- A rule added with ``Add-WebConfigurationProperty -Value @{name=...}`` has its schema child elements
  (``match``, ``conditions``, ``action``) at once, so they can be set one by one — EOMT's sequence.
- Delete then restore gives back exactly what IIS read before, for an outbound rule with its
  precondition (owa), an inbound rule with a condition (site) and a server-level rule.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from emconsole.backends.lab.exchange.catalogue import M1_RULE
from emconsole.backends.lab.exchange.org import Organisation
from test_lab_exchange import make_org, run
from test_remote_lab import send

from emconsole.models import ActionKind, OutcomeStatus
from emconsole.remote import new_backup_id
from emconsole.remote import scripts as S
from emconsole.remote.documents import RestoreDocument, RewriteDoc, StatusDocument
from emconsole.remote.results import outcome

APPHOST = "MACHINE/WEBROOT/APPHOST"
SITE = "IIS:\\Sites\\Default Web Site"
NEW = "Lab fidelity - inbound"


def q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def artifacts(org: Organisation, server: str) -> list[RewriteDoc]:
    doc = send(org, server, S.build_status(server, "snapin"))
    assert isinstance(doc, StatusDocument) and doc.code == "" and doc.result is not None
    assert doc.problems == [], doc.problems
    return list(doc.result.artifacts)


def rule_state(org: Organisation, server: str, artifact: RewriteDoc) -> Any:
    """Everything Get-WebConfiguration reports for one rule or precondition (None when absent)."""
    script = (
        f"$e = @(Get-WebConfiguration -PSPath {q(artifact.pspath)} "
        f"-Filter {q(artifact.filter + '/' + artifact.element)} "
        f"| Where-Object {{ [string]$_.name -eq {q(artifact.name)} }})\n"
        "if ($e.Count -eq 1) { $e[0] | ConvertTo-Json -Depth 8 -Compress } else { $e.Count }"
    )
    result = run(org, server, script)
    assert result.exit_code == 0, result.stderr.decode()
    found = json.loads(result.stdout.decode())
    return None if found == 0 else found


def effective(org: Organisation, server: str) -> dict[str, str]:
    iis = org.server(server).iis
    return {loc: iis.effective(loc) for loc in iis.config}


def m2_on_owa() -> tuple[Organisation, str]:
    org = make_org({"EX01": {"build": "2019 CU15 Feb26SU"}})
    org.advance(2 * 3600)  # the EM service has applied M2
    return org, "M2"


def m1_on_site() -> tuple[Organisation, str]:
    return make_org({"EX01": {"build": "2016 CU23 Oct22SU"}}), "M1"  # applied in 2022


def m1_server_wide() -> tuple[Organisation, str]:
    org = make_org({"EX01": {"build": "2019 CU15 Feb26SU", "applied": []}})
    org.server("EX01").iis.merge_rewrite("", M1_RULE)  # in applicationHost.config, for every site
    return org, "M1"


@pytest.mark.parametrize(
    ("placed", "pspath"),
    [(m2_on_owa, SITE + "\\owa"), (m1_on_site, SITE), (m1_server_wide, APPHOST)],
    ids=["outbound-owa", "inbound-site", "server-level"],
)
def test_delete_then_restore_gives_back_exactly_what_iis_read(placed: Any, pspath: str) -> None:
    org, mid = placed()
    targets = [a for a in artifacts(org, "EX01") if a.name.startswith(f"EEMS {mid}.")]
    assert targets and {a.pspath for a in targets} == {pspath}
    state = {a.name: rule_state(org, "EX01", a) for a in targets}
    config = effective(org, "EX01")

    bid = new_backup_id()
    deleted = send(org, "EX01", S.build_delete("EX01", "snapin", [mid], bid, block=False))
    done = outcome(deleted, "EX01", ActionKind.DELETE)
    assert done.status is OutcomeStatus.DONE, done.detail  # verified: nothing left, no problem
    assert all(rule_state(org, "EX01", a) is None for a in targets)

    restored = send(org, "EX01", S.build_restore("EX01", bid))
    back = outcome(restored, "EX01", ActionKind.RESTORE)
    assert back.status is OutcomeStatus.DONE, back.detail
    assert isinstance(restored, RestoreDocument) and restored.result is not None
    assert sorted(restored.result.restored) == sorted(state) and restored.result.missing == []
    assert {a.name: rule_state(org, "EX01", a) for a in targets} == state
    assert effective(org, "EX01") == config
    assert [a for a in artifacts(org, "EX01") if a.name.startswith(f"EEMS {mid}.")] == targets


@pytest.mark.parametrize("pspath", [APPHOST, APPHOST + "/", "IIS:\\"])
def test_server_level_paths_are_application_host(pspath: str) -> None:
    org = make_org({"EX01": {"build": "2019 CU15 Feb26SU"}})
    result = run(
        org,
        "EX01",
        f"Get-WebConfiguration -PSPath {q(pspath)} -Filter 'system.webServer/rewrite/rules' "
        "| ConvertTo-Json -Depth 3 -Compress",
    )
    assert result.exit_code == 0, result.stderr.decode()
    section = json.loads(result.stdout.decode())
    assert section["PSPath"] == APPHOST and section["Collection"] == []
    missing = run(
        org, "EX01", f"Get-WebConfiguration -PSPath '{APPHOST}/No Such Site' -Filter 'system.webServer'"
    )
    assert "PathNotFound" in missing.stderr.decode()


def test_a_rule_added_by_name_is_completed_as_eomt_does() -> None:
    """CSS-Exchange EOMT's sequence: add the rule by name, then set match, conditions and action."""
    org = make_org({"EX01": {"build": "2019 CU15 Feb26SU"}})
    rule = f"system.webServer/rewrite/rules/rule[@name='{NEW}']"
    added = run(
        org,
        "EX01",
        f"Add-WebConfigurationProperty -PSPath {q(SITE)} -Filter 'system.webServer/rewrite/rules' -Name '.' "
        f"-Value @{{name = {q(NEW)}; stopProcessing = 'True'}}\n"
        f"Get-WebConfiguration -PSPath {q(SITE)} -Filter {q(rule)} | ConvertTo-Json -Depth 4 -Compress",
    )
    assert added.exit_code == 0, added.stderr.decode()
    fresh = json.loads(added.stdout.decode())
    assert fresh["stopProcessing"] is True and fresh["patternSyntax"] == "ECMAScript"
    assert fresh["match"]["url"] == "" and fresh["match"]["ignoreCase"] is True
    assert fresh["conditions"]["logicalGrouping"] == "MatchAll" and fresh["conditions"]["Collection"] == []
    assert fresh["action"]["type"] == "None"
    xml_before_writes = ET.tostring(org.server("EX01").iis.config["Default Web Site"], encoding="unicode")
    assert "<match" not in xml_before_writes  # reading the defaults wrote nothing

    completed = run(
        org,
        "EX01",
        f"Set-WebConfigurationProperty -PSPath {q(SITE)} -Filter {q(rule + '/match')} -Name 'url' "
        "-Value '.*'\n"
        f"Set-WebConfigurationProperty -PSPath {q(SITE)} -Filter {q(rule + '/conditions')} -Name '.' "
        "-Value @{input = '{UrlDecode:{REQUEST_URI}}'; matchType = '0'; "
        "pattern = '(?=.*autodiscover)(?=.*powershell)'; ignoreCase = 'True'; negate = 'False'}\n"
        f"Set-WebConfigurationProperty -PSPath {q(SITE)} -Filter {q(rule + '/action')} -Name 'type' "
        "-Value 'AbortRequest'",
    )
    assert completed.exit_code == 0, completed.stderr.decode()
    [written] = [
        r for r in org.server("EX01").iis.config["Default Web Site"].iter("rule") if r.get("name") == NEW
    ]
    assert ET.tostring(written, encoding="unicode") == (
        f'<rule name="{NEW}" stopProcessing="true"><match url=".*" /><conditions>'
        '<add input="{UrlDecode:{REQUEST_URI}}" matchType="Pattern" '
        'pattern="(?=.*autodiscover)(?=.*powershell)" ignoreCase="true" negate="false" />'
        '</conditions><action type="AbortRequest" /></rule>'
    )


def test_a_child_of_a_rule_that_does_not_exist_is_not_made_up() -> None:
    org = make_org({"EX01": {"build": "2019 CU15 Feb26SU"}})
    before = effective(org, "EX01")
    result = run(
        org,
        "EX01",
        f"Set-WebConfigurationProperty -PSPath {q(SITE)} "
        "-Filter \"system.webServer/rewrite/rules/rule[@name='Nope']/match\" -Name 'url' -Value '.*'",
    )
    err = result.stderr.decode()
    assert result.exit_code == 1 and "ConfigurationException" in err and "is not found at path" in err
    assert effective(org, "EX01") == before


def test_filters_match_element_names_case_insensitively_at_server_level() -> None:
    """As in published scripts: ``system.webserver/rewrite/GlobalRules`` at MACHINE/WEBROOT/APPHOST."""
    org = make_org({"EX01": {"build": "2019 CU15 Feb26SU"}})
    result = run(
        org,
        "EX01",
        f"Add-WebConfigurationProperty -PSPath '{APPHOST}' -Filter 'system.webserver/rewrite/GlobalRules' "
        "-Name '.' -Value @{name = 'HTTP to HTTPS'; stopProcessing = 'True'}\n"
        f"Set-WebConfigurationProperty -PSPath '{APPHOST}' "
        "-Filter \"system.webServer/rewrite/globalRules/rule[@name='HTTP to HTTPS']/action\" "
        "-Name 'type' -Value 'redirect'",
    )
    assert result.exit_code == 0, result.stderr.decode()
    server = org.server("EX01").iis.config[""]
    assert ET.tostring(server, encoding="unicode") == (
        "<configuration><system.webServer><rewrite><globalRules>"
        '<rule name="HTTP to HTTPS" stopProcessing="true"><action type="Redirect" /></rule>'
        "</globalRules></rewrite></system.webServer></configuration>"
    )
