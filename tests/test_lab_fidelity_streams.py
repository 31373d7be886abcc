"""Host text and warnings merged into the output (``6>&1``, ``3>&1``, ``*>&1``) are the records Windows
PowerShell 5.1 makes, whose ``[string]`` is the message text — proved first with the console's OCS
test script (``build_test_ocs``) through ExchangeHost, then on the records themselves."""

from __future__ import annotations

import json

import pytest
from emconsole.backends.lab.exchange.org import Organisation
from test_lab_exchange import make_org, run
from test_remote_lab import send

from emconsole.models import ActionKind, OutcomeStatus
from emconsole.remote import scripts as S
from emconsole.remote.documents import OcsDocument, StatusDocument
from emconsole.remote.results import outcome

OCS = "https://officeclient.microsoft.com/getexchangemitigations"


@pytest.mark.parametrize(
    ("server", "lines", "status"),
    [
        (
            {"build": "2019 CU15 Feb26SU"},
            ["Result: Success.", f"Message: Successfully able to connect to {OCS}."],
            OutcomeStatus.DONE,
        ),
        (
            {"build": "2019 CU15 Feb26SU", "faults": {"ocs-unreachable": ""}},
            [
                "Result: Failed.",
                f"Message: Unable to connect to the Mitigation Service endpoint {OCS}: "
                "Unable to connect to the remote server.",
            ],
            OutcomeStatus.FAILED,
        ),
        (
            {"build": "2016 CU23 Oct22SU"},
            [
                "Result: Failed.",
                "Message: The remote certificate is invalid according to the validation procedure.",
            ],
            OutcomeStatus.FAILED,
        ),
    ],
    ids=["reachable", "unreachable", "old-certificate"],
)
def test_ocs_script_reads_the_host_lines(
    server: dict[str, object], lines: list[str], status: OutcomeStatus
) -> None:
    org = make_org({"EX01": server})
    doc = send(org, "EX01", S.build_test_ocs("EX01", "snapin"))
    assert isinstance(doc, OcsDocument) and doc.code == "" and doc.result is not None
    assert doc.result.lines == lines
    assert outcome(doc, "EX01", ActionKind.TEST_OCS).status is status


def test_status_script_keeps_the_warning_text_of_get_mitigations() -> None:
    """status.ps1 reads Get-Mitigations.ps1 with ``*>&1`` and keeps what is not a row as ``[string]``."""
    org = make_org({"EX01": {"build": "2019 CU15 Feb26SU", "faults": {"ocs-unreachable": ""}}})
    doc = send(org, "EX01", S.build_status("EX01", "snapin"))
    assert isinstance(doc, StatusDocument) and doc.result is not None
    assert doc.result.mitigations_output == ["Connection with Mitigation Endpoint was not successful."]


def lines_of(org: Organisation, script: str) -> list[str]:
    result = run(org, "EX01", script)
    assert result.exit_code == 0 and result.stderr == b"", result.stderr.decode()
    return result.stdout.decode().split("\r\n")[:-1]


def test_string_of_a_host_record_is_its_text() -> None:
    org = make_org({"EX01": {"build": "2019 CU15 Feb26SU"}})
    script = (
        "$r = Write-Host 'hello there' 6>&1\n"
        "[string]$r\n"
        '"<$r>"\n'
        "$r.MessageData.Message\n"
        "$r.Source\n"
        "@($r.Tags)[0]\n"
        "$r"  # Out-Default shows the text
    )
    assert lines_of(org, script) == [
        "hello there",
        "<hello there>",
        "hello there",
        "Write-Host",
        "PSHOST",
        "hello there",
    ]


def test_records_merged_by_star_redirect_convert_like_51() -> None:
    org = make_org({"EX01": {"build": "2019 CU15 Feb26SU"}})
    script = (
        "$t = Join-Path $env:ExchangeInstallPath 'Scripts\\Test-MitigationServiceConnectivity.ps1'\n"
        "$all = @(& $t *>&1)\n"
        "$all | ForEach-Object { [string]$_ }\n"
        "$w = Write-Warning 'careful now' 3>&1\n"
        "[string]$w\n"
        "$w.Message\n"
        "$all[0] | ConvertTo-Json -Depth 2 -Compress"
    )
    *texts, record = lines_of(org, script)
    assert texts == [
        "Result: Success.",
        f"Message: Successfully able to connect to {OCS}.",
        "careful now",
        "careful now",
    ]
    as_json = json.loads(record)
    assert as_json["MessageData"]["Message"] == "Result: Success." and as_json["Tags"] == ["PSHOST"]


def test_unredirected_host_text_keeps_nonewline() -> None:
    org = make_org({"EX01": {"build": "2019 CU15 Feb26SU"}})
    result = run(org, "EX01", "Write-Host 'a' -NoNewline\nWrite-Host 'b'\n'out'")
    assert result.stdout.decode() == "ab\r\nout\r\n"
