"""The remote scripts run end to end on the lab's Exchange emulation (ExchangeHost, real interpreter)."""

from __future__ import annotations

import pytest
from emconsole.backends.lab.exchange.host import ExchangeHost
from emconsole.backends.lab.exchange.org import Organisation
from emconsole.backends.lab.host import CommandRequest, ShellContext
from test_lab_exchange import fleet  # the lab's own organisation fixture

from emconsole.models import ActionKind, OutcomeStatus
from emconsole.remote import new_backup_id, parse_document
from emconsole.remote import scripts as S
from emconsole.remote.documents import DeleteDocument, Envelope, StatusDocument
from emconsole.remote.results import outcome, server_state


@pytest.fixture
def org() -> Organisation:
    lab = fleet()
    lab.advance(2 * 3600)  # the EM service has run and applied what fits
    return lab


def send(org: Organisation, server: str, script: S.RemoteScript) -> Envelope:
    result = ExchangeHost(org).run(
        CommandRequest("powershell.exe", script.text), ShellContext(server, "s1", 65001)
    )
    assert result.exit_code == 0, result.stderr.decode()
    return parse_document(result.stdout.decode("utf-8"), script.operation)


def status(org: Organisation, ems: str = "snapin") -> StatusDocument:
    doc = send(org, "EX01", S.build_status("EX01", ems))
    assert isinstance(doc, StatusDocument) and doc.code == ""
    return doc


@pytest.mark.parametrize("ems", ["snapin", "remoteexchange"])
def test_status_reads_the_server(org: Organisation, ems: str) -> None:
    state = server_state(status(org, ems), "EX01")
    assert state.server_enabled is True and state.org_enabled is True
    assert "M2.1.0" in state.applied and state.service is not None and state.service.healthy
    m2 = next(m for m in state.mitigations if m.id == "M2.1.0")
    assert {a.name for a in m2.artifacts} >= {"EEMS M2.1 OWA CSP - outbound"}


def test_identity_mismatch_is_refused(org: Organisation) -> None:
    doc = send(org, "EX02", S.build_status("EX01", "snapin"))
    assert doc.code == "identity_mismatch"


def test_block_unblock_and_a_race(org: Organisation) -> None:
    done = send(org, "EX01", S.build_block("EX01", "snapin", ["M2", "M2.1.0"], []))
    assert outcome(done, "EX01", ActionKind.BLOCK).status is OutcomeStatus.DONE
    assert server_state(status(org), "EX01").blocked == ("M2", "M2.1.0")
    raced = send(org, "EX01", S.build_block("EX01", "snapin", ["M1"], []))
    assert raced.code == "changed_since_read"
    undone = send(org, "EX01", S.build_unblock("EX01", "snapin", ["M2", "M2.1.0"], ["M2.1.0", "m2"]))
    assert outcome(undone, "EX01", ActionKind.UNBLOCK).status is OutcomeStatus.DONE


def test_reapply_and_switches(org: Organisation) -> None:
    re = send(org, "EX01", S.build_reapply("EX01"))
    assert outcome(re, "EX01", ActionKind.REAPPLY).status is OutcomeStatus.DONE
    for scope in ("org", "server"):
        doc = send(org, "EX01", S.build_set_enabled("EX01", "snapin", scope, False))
        assert outcome(doc, "EX01", ActionKind.DISABLE).status is OutcomeStatus.DONE
    state = server_state(status(org), "EX01")
    assert state.org_enabled is False and state.server_enabled is False


@pytest.mark.parametrize("given", ["M2", "M2.1.0"])  # the applied ID finds the "EEMS M2.1 ..." rules too
def test_delete_backs_up_then_removes(org: Organisation, given: str) -> None:
    before = status(org).result
    assert before is not None
    bid = new_backup_id()
    doc = send(org, "EX01", S.build_delete("EX01", "snapin", [given], bid, block_ids=["M2", "M2.1.0"]))
    assert isinstance(doc, DeleteDocument) and doc.code == "" and doc.result is not None
    assert set(doc.result.removed) == {a.name for a in before.artifacts if a.name.startswith("EEMS M2.")}
    assert doc.result.remaining == [] and doc.result.backup is not None
    after = status(org)
    assert after.result is not None
    assert not [a for a in after.result.artifacts if a.name.startswith("EEMS M2.")]
    assert f"{bid}.json" in [b.name for b in after.result.backups]
    assert server_state(after, "EX01").blocked == ("M2", "M2.1.0")


def test_delete_then_restore_round_trips(org: Organisation) -> None:
    before = status(org).result.artifacts  # type: ignore[union-attr]
    bid = new_backup_id()
    send(org, "EX01", S.build_delete("EX01", "snapin", ["M2"], bid, block=False))
    doc = send(org, "EX01", S.build_restore("EX01", bid))
    assert doc.code == "" and not doc.problems
    assert status(org).result.artifacts == before  # type: ignore[union-attr]
