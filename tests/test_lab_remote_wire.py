"""Every ``emconsole.remote`` script builder's output, sent to the lab by plain pywinrm as the
backend sends it (``powershell.exe -NoProfile -NonInteractive -EncodedCommand``, skip_cmd_shell,
code page 65001), prints its JSON document — and the lab's state changes as the document says.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import winrm
from emconsole.backends.lab.fleet import LabFleet
from labfixture import exchange_server, lab_credentials

from emconsole.remote import RemoteScript, new_backup_id, parse_document
from emconsole.remote import scripts as S
from emconsole.remote.documents import Envelope

LabFactory = Callable[..., LabFleet]
SERVICE, POOL = "MSExchangeImap4", "MSExchangeOWACalendarAppPool"  # the LAB-ONLY examples' artifacts


class Client:
    """One pywinrm Protocol and one open shell per server, as the console's backend keeps them."""

    def __init__(self, fleet: LabFleet) -> None:
        self.fleet = fleet
        self._open: dict[int, tuple[winrm.Protocol, str]] = {}

    def send(self, server: int, script: RemoteScript) -> Envelope:
        """Run the script on a server; its document (the JSON must be the last thing on stdout)."""
        if server not in self._open:
            user, password = lab_credentials(self.fleet)
            p = winrm.Protocol(
                self.fleet.endpoint(server), transport="basic", username=user, password=password, proxy=None
            )
            self._open[server] = (p, p.open_shell(codepage=65001))
        p, shell = self._open[server]
        command = p.run_command(shell, "powershell.exe", script.encoded_arguments(), skip_cmd_shell=True)
        out, err, code = p.get_command_output(shell, command)
        p.cleanup_command(shell, command)
        assert (code, err) == (0, b""), err.decode()
        last = json.loads(out.decode("utf-8").rstrip().splitlines()[-1])
        assert (last["schema"], last["operation"]) == (script.schema, script.operation)
        return parse_document(out, script.operation)

    def close(self) -> None:
        for p, shell in self._open.values():
            p.close_shell(shell)


@pytest.fixture
def lab(lab_factory: LabFactory) -> Iterator[tuple[LabFleet, Client]]:
    """EX01: 2019 CU15 (M2 and the app-pool example apply); EX02: 2019 CU14 (the service example)."""
    fleet = lab_factory(
        servers=3,
        per_server={1: {"build": "2019 CU15 Feb26SU"}, 2: {"build": "2019 CU14 Feb26SU"}},
        faults="ocs-unreachable:3",
    )
    client = Client(fleet)
    yield fleet, client
    client.close()


def _result(doc: Envelope) -> Any:
    assert doc.code == "" and doc.problems == [], (doc.code, doc.error, doc.problems)
    result = getattr(doc, "result", None)  # every operation's document has one (Envelope does not)
    assert result is not None
    return result


def status(client: Client, server: int, ems: str = "snapin") -> Any:
    return _result(client.send(server, S.build_status(f"LAB-EX0{server}", ems, [SERVICE], [POOL])))


@pytest.mark.parametrize("ems", ["snapin", "remoteexchange"])
def test_status_reads_everything_the_console_shows(lab: tuple[LabFleet, Client], ems: str) -> None:
    _, client = lab
    one, two = status(client, 1, ems), status(client, 2, ems)
    assert one.server.name == "LAB-EX01" and one.org_enabled is True
    assert {"PING1", "M2.1.0", "LAB-POOL1.1"} <= set(one.server.applied)
    assert {a.name for a in one.artifacts} == {
        "EEMS M2.1 OWA CSP - outbound",
        "EEMS M2.1 OWA SPA HTML shell - precondition",
    }
    assert [(p.name, p.state) for p in one.app_pools] == [(POOL, "Stopped")]
    assert [(s.name, s.state, s.start_mode) for s in two.services] == [
        ("MSExchangeMitigation", "Running", "Auto"),
        (SERVICE, "Stopped", "Disabled"),
    ]
    assert {(m.id, m.status) for m in two.mitigations} >= {("LAB-SVC1.1", "Applied"), ("M2.1.0", "Applied")}
    assert [e.id for e in one.events[:2]] == [1005, 1006] and one.backups == []


def test_status_reports_expected_failures_in_the_document(lab_factory: LabFactory) -> None:
    fleet = lab_factory(servers=2, faults="ems-unavailable:1;ad-second-hop:2")
    client = Client(fleet)
    assert client.send(1, S.build_status("LAB-EX01", "snapin")).code == "ems_not_loadable"
    hop = client.send(2, S.build_status("LAB-EX02", "remoteexchange"))  # the shell loads; AD fails
    assert hop.code == "exchange_error" and "ADOperationException" in hop.error_type + hop.error_id
    assert client.send(2, S.build_status("LAB-EX01", "snapin")).code == "identity_mismatch"
    client.close()


def test_block_then_unblock_with_compare_and_set(lab: tuple[LabFleet, Client]) -> None:
    fleet, client = lab
    done = _result(client.send(2, S.build_block("LAB-EX02", "snapin", ["M2", "M2.1.0"], [])))
    assert done.verified and done.after == ["M2", "M2.1.0"]
    assert exchange_server(fleet, 2).record.blocked == ["M2", "M2.1.0"]
    assert status(client, 2).server.blocked == ["M2", "M2.1.0"]
    raced = client.send(2, S.build_block("LAB-EX02", "snapin", ["M1"], []))  # read an older list
    assert raced.code == "changed_since_read"
    undone = _result(
        client.send(2, S.build_unblock("LAB-EX02", "snapin", ["M2", "M2.1.0"], ["M2", "M2.1.0"]))
    )
    assert undone.verified and undone.after == [] and exchange_server(fleet, 2).record.blocked == []


def test_reapply_restarts_the_service_and_the_check_follows(lab: tuple[LabFleet, Client]) -> None:
    fleet, client = lab
    done = _result(client.send(1, S.build_reapply("LAB-EX01")))
    assert done.new_process_id != done.old_process_id and done.state == "Running"
    before = len(status(client, 1).events)
    fleet.org.advance(timedelta(minutes=10))  # "pending next EM check" until then
    assert len(status(client, 1).events) == before + 1


@pytest.mark.parametrize("scope", ["server", "org"])
def test_disable_and_enable(lab: tuple[LabFleet, Client], scope: str) -> None:
    fleet, client = lab
    off = _result(client.send(1, S.build_set_enabled("LAB-EX01", "snapin", scope, False)))
    assert (off.before, off.after, off.verified) == (True, False, True)
    seen_from_two = status(client, 2)
    assert (seen_from_two.org_enabled, status(client, 1).server.enabled) == (
        (False, True) if scope == "org" else (True, False)
    )
    assert seen_from_two.server.enabled is True
    on = _result(client.send(1, S.build_set_enabled("LAB-EX01", "snapin", scope, True)))
    assert on.after is True and fleet.org.directory.org.mitigations_enabled is True


def test_delete_backs_up_blocks_and_removes_then_restore_puts_back(lab: tuple[LabFleet, Client]) -> None:
    fleet, client = lab
    before = status(client, 1).artifacts
    backup = new_backup_id()
    script = S.build_delete("LAB-EX01", "snapin", ["M2"], backup, block_ids=["M2", "M2.1.0"], expected=[])
    deleted = _result(client.send(1, script))
    assert set(deleted.removed) == {a.name for a in before} and deleted.remaining == []
    assert deleted.blocking.verified and deleted.backup is not None
    after = status(client, 1)
    assert after.artifacts == [] and [b.name for b in after.backups] == [f"{backup}.json"]
    fleet.org.advance(timedelta(hours=1))
    assert status(client, 1).artifacts == []  # blocked: the next run does not bring it back
    restored = _result(client.send(1, S.build_restore("LAB-EX01", backup)))
    assert set(restored.restored) == {a.name for a in before} and restored.missing == []
    assert status(client, 1).artifacts == before


def test_delete_and_restore_a_service_and_an_app_pool_mitigation(lab: tuple[LabFleet, Client]) -> None:
    _, client = lab
    svc_backup, pool_backup = new_backup_id(), new_backup_id()
    svc = _result(
        client.send(
            2, S.build_delete("LAB-EX02", "snapin", ["LAB-SVC1"], svc_backup, services=[SERVICE], block=False)
        )
    )
    assert [(s.name, s.state, s.start_mode) for s in svc.services] == [(SERVICE, "Running", "Auto")]
    pool = _result(
        client.send(
            1, S.build_delete("LAB-EX01", "snapin", ["LAB-POOL1"], pool_backup, app_pools=[POOL], block=False)
        )
    )
    assert [(p.name, p.state) for p in pool.app_pools] == [(POOL, "Started")]
    svc_back = _result(client.send(2, S.build_restore("LAB-EX02", svc_backup)))
    assert [(s.name, s.state, s.start_mode) for s in svc_back.services] == [(SERVICE, "Stopped", "Disabled")]
    pool_back = _result(client.send(1, S.build_restore("LAB-EX01", pool_backup)))
    assert [(p.name, p.state) for p in pool_back.app_pools] == [(POOL, "Stopped")]


def test_test_ocs_prints_the_scripts_lines(lab: tuple[LabFleet, Client]) -> None:
    _, client = lab
    good = _result(client.send(1, S.build_test_ocs("LAB-EX01", "remoteexchange")))
    assert good.lines[0] == "Result: Success." and good.lines[1].startswith("Message: ")
    bad = _result(client.send(3, S.build_test_ocs("LAB-EX03", "snapin")))
    assert bad.lines[0] == "Result: Failed."
