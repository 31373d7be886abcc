"""Parsing what the scripts print, as Windows PowerShell 5.1 really prints it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emconsole.models import ActionKind, FailureKind, MitigationStatus, OutcomeStatus
from emconsole.remote.documents import OutputNotUnderstood, parse_document, parse_status
from emconsole.remote.results import failure, outcome, server_state

STATUS: dict[str, Any] = {
    "schema": 1,
    "operation": "status",
    "code": "",
    "error_id": "",
    "error_type": "",
    "error": "",
    "computer": "EX01",
    "time": "2026-03-01T10:00:00.1234567Z",
    "problems": [],
    "result": {
        "server": {
            "name": "EX01",
            "fqdn": "ex01.contoso.local",
            "version": "Version 15.2 (Build 1748.43)",
            "enabled": True,
            "data_collection": False,
            "proxy": "",
            "applied": "M2.1.0",
            "blocked": [],
            "applied_time": "",
        },
        "org_enabled": True,
        "mitigations": {
            "id": "M2.1.0",
            "type": "IISUrlRewrite",
            "description": "OWA CSP",
            "status": "Applied with warnings",
            "server": "EX01",
        },
        "mitigations_output": "Connection with Mitigation Endpoint was not successful.",
        "services": [
            {
                "name": "MSExchangeMitigation",
                "present": True,
                "state": "Running",
                "start_mode": "Auto",
                "process_id": 4242,
            }
        ],
        "app_pools": [],
        "artifacts": {
            "kind": "rule",
            "direction": "outbound",
            "pspath": "IIS:\\Sites\\Default Web Site\\owa",
            "filter": "system.webServer/rewrite/outboundRules",
            "element": "rule",
            "name": "EEMS M2.1.0 OWA CSP - outbound",
            "stopProcessing": None,
            "conditions": {"logicalGrouping": "MatchAll", "entries": {"input": "{X}", "pattern": "y"}},
            "action": {"type": "Rewrite", "value": "script-src 'self'", "statusCode": 0},
        },
        "events": {
            "id": 1005,
            "time": "2026-03-01T09:00:00.0000000Z",
            "level": "Information",
            "provider": "MSExchange Mitigation Service",
            "message": "applied",
            "record_id": 17,
        },
        "backups": {
            "name": "20260131T235959Z-0123abcd.json",
            "size": 900,
            "modified": "2026-01-31T23:59:59.0000000Z",
        },
    },
}


def dumps(doc: object) -> str:
    return json.dumps(doc, separators=(",", ":"))


def test_status_with_bom_banner_and_trailing_noise() -> None:
    out = "\ufeffWelcome to the Exchange Management Shell!\r\n" + dumps(STATUS) + "\r\nPS>\x00"
    doc = parse_status(out)
    assert doc.schema_ == 1 and doc.result is not None
    res = doc.result
    assert res.server is not None and res.server.applied == ["M2.1.0"]  # single item unwrapped by 5.1
    assert res.mitigations[0].status == "Applied with warnings"  # unknown status kept raw
    assert res.artifacts[0].conditions.entries[0].input == "{X}"
    assert res.artifacts[0].stopProcessing == "" and res.artifacts[0].action.statusCode == "0"
    state = server_state(doc, "EX01")
    assert state.mitigations[0].status is MitigationStatus.UNKNOWN
    assert state.mitigations[0].raw_status == "Applied with warnings"
    assert state.mitigations[0].artifacts[0].name.startswith("EEMS M2.1.0")
    assert state.service is not None and state.service.healthy and state.service.process_id == 4242
    assert state.applied == ("M2.1.0",) and state.events[0].record_id == 17
    assert state.backups[0].id == "20260131T235959Z-0123abcd"
    assert state.read_time.microsecond == 123456


def test_last_document_wins_and_bytes_are_accepted() -> None:
    first = dict(STATUS, computer="OLD")
    doc = parse_status((dumps(first) + "\n" + dumps(STATUS)).encode("utf-8"))
    assert doc.computer == "EX01"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "garbage",
        dumps(STATUS)[:-7],
        '{"schema": 1, "operation": "status"',
        "[1, 2]",
        dumps(dict(STATUS, schema=2)),
        dumps(dict(STATUS, operation="block")),
    ],
)
def test_not_understood_keeps_the_raw_output(raw: str) -> None:
    with pytest.raises(OutputNotUnderstood) as info:
        parse_status(raw)
    assert info.value.raw == raw


def test_codes_map_to_the_taxonomy() -> None:
    doc = parse_status(
        dumps(
            dict(
                STATUS,
                code="exchange_error",
                error_id="ADOperationException,Get-ExchangeServer",
                error="Active Directory operation failed on dc01.\r\nmore",
                result=None,
            )
        )
    )
    fail = failure(doc)
    assert fail is not None and fail.kind is FailureKind.AD_SECOND_HOP and "CredSSP" in fail.message
    doc = parse_status(dumps(dict(STATUS, code="identity_mismatch", result=None)))
    assert failure(doc) is not None and failure(doc).kind is FailureKind.IDENTITY_MISMATCH  # type: ignore[union-attr]
    doc = parse_status(dumps(dict(STATUS, code="ems_not_loadable", error_id="AddPSSnapInRead,Add-PSSnapin")))
    assert failure(doc).kind is FailureKind.EMS_NOT_LOADABLE  # type: ignore[union-attr]


def envelope(operation: str, result: object, code: str = "") -> str:
    return dumps({"schema": 1, "operation": operation, "code": code, "problems": [], "result": result})


def test_block_outcomes() -> None:
    done = parse_document(
        envelope(
            "block",
            {
                "mode": "block",
                "expected": [],
                "before": [],
                "wanted": ["M2", "M2.1.0"],
                "after": ["M2", "M2.1.0"],
                "verified": True,
            },
        ),
        "block",
    )
    assert outcome(done, "EX01", ActionKind.BLOCK).status is OutcomeStatus.DONE
    lag = parse_document(
        envelope("block", {"mode": "block", "wanted": "M2", "after": None, "verified": False}), "block"
    )
    assert outcome(lag, "EX01", ActionKind.BLOCK).status is OutcomeStatus.NOT_VERIFIED
    raced = parse_document(
        envelope("block", {"mode": "block", "before": "M1"}, code="changed_since_read"), "block"
    )
    result = outcome(raced, "EX01", ActionKind.BLOCK)
    assert result.status is OutcomeStatus.FAILED and "changed since it was read" in result.detail


def test_reapply_needs_a_new_process() -> None:
    same = parse_document(
        envelope("reapply", {"old_process_id": 5, "new_process_id": 5, "state": "Running"}), "reapply"
    )
    assert outcome(same, "EX01", ActionKind.REAPPLY).status is OutcomeStatus.NOT_VERIFIED
    new = parse_document(
        envelope("reapply", {"old_process_id": 5, "new_process_id": 9, "state": "Running"}), "reapply"
    )
    assert outcome(new, "EX01", ActionKind.REAPPLY).status is OutcomeStatus.DONE


def test_delete_returns_its_backup_and_checks_remaining() -> None:
    backup = {
        "backup_id": "20260131T235959Z-0123abcd",
        "ids": "M1",
        "artifacts": STATUS["result"]["artifacts"],
    }
    ok = parse_document(
        envelope(
            "delete",
            {
                "backup_id": backup["backup_id"],
                "backup": backup,
                "removed": "EEMS M1.1 PowerShell - inbound",
                "remaining": [],
                "blocking": {"mode": "", "verified": False},
            },
        ),
        "delete",
    )
    result = outcome(ok, "EX01", ActionKind.DELETE)
    assert result.status is OutcomeStatus.DONE and result.backup is not None
    assert (
        result.backup["ids"] == ["M1"]
        and result.backup["artifacts"][0]["action"]["value"] == "script-src 'self'"
    )
    left = parse_document(
        envelope("delete", {"backup": backup, "remaining": "EEMS M1.1 PowerShell - inbound"}), "delete"
    )
    assert outcome(left, "EX01", ActionKind.DELETE).status is OutcomeStatus.NOT_VERIFIED


def test_ocs_lines() -> None:
    doc = parse_document(
        envelope("test_ocs", {"lines": ["Result: Failed.", "Message: The remote certificate: bad"]}),
        "test_ocs",
    )
    result = outcome(doc, "EX01", ActionKind.TEST_OCS)
    assert result.status is OutcomeStatus.FAILED and "The remote certificate: bad" in result.detail
    silent = parse_document(envelope("test_ocs", {"lines": []}), "test_ocs")
    assert outcome(silent, "EX01", ActionKind.TEST_OCS).status is OutcomeStatus.NOT_VERIFIED


def test_a_nested_schema_object_is_not_the_document() -> None:
    inner = {"schema": 1, "backup_id": "20260131T235959Z-0123abcd"}
    text = envelope("delete", {"backup": inner, "removed": []})
    assert parse_document(text + "\n", "delete").operation == "delete"
    with pytest.raises(OutputNotUnderstood):
        parse_document(text[:-3], "delete")  # truncated: the complete inner object must not be taken
