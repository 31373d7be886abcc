"""SIGKILL in the middle of a bulk delete: ``emconsole delete M2 --all --yes`` runs in its own process
against a lab in this one, where a few servers answer slowly (``slow=``), and is killed once one slow
server's delete has happened on the lab but not been reported — once while other deletes are still
queued (some servers never touched), once after some servers finished. At the next start:

- ``emconsole audit`` lists every planned server with its outcome, or "outcome unknown";
- a refresh (``emconsole status``) shows each server's true state, the lab's;
- nothing removed is lost: every rule gone from a server is in a backup file on that server, under
  the backup ID the audit names, and ``emconsole restore`` puts it back (on every changed server after
  the early kill; on one server of each outcome after the late one, to keep the test short).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from emconsole.backends.lab.exchange.org import LabServer
from hostilekit import assert_no_traceback, cli_command, cli_env, lab_facts, write_lab_config

from emconsole.cli.jsonout import ActionDoc, AuditDoc, StatusDoc
from emconsole.labconfig import Lab, start_lab

SERVERS = 8
SLOW = (2, 5, 8)  # with two calls at a time: fast servers finish, slow ones hold the slots
SLOW_S = 1.0
BACKUPS = "c:\\programdata\\emconsole\\backups\\"

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX only")


def m2_rules(server: LabServer) -> list[str]:
    """The M2 rewrite rules and preconditions on the server, read under its lock (the lab runs scripts
    on its own thread)."""
    with server.lock:
        return [r for r in lab_facts(server)["rules"] if r.startswith("EEMS M2")]


def backups(server: LabServer) -> dict[str, set[str]]:
    """The console's backup files on the server: backup ID (as the file names it) -> the names of the
    artifacts it saved."""
    with server.lock:
        files = {server.windows.file_names.get(p, p): text for p, text in server.windows.files.items()}
    out = {}
    for path, text in files.items():
        if path.lower().startswith(BACKUPS) and path.lower().endswith(".json"):
            document = json.loads(text.lstrip("\ufeff"))
            out[path[len(BACKUPS):-len(".json")]] = {a["name"] for a in document["artifacts"]}
    return out


def wait_for(condition: Callable[[], bool], child: subprocess.Popen[str], what: str,
             timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert child.poll() is None, f"the console ended before {what}: {child.communicate()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def start_cli(lab: Lab, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(cli_command(*args), env=cli_env(lab.fleet), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


#: When the kill lands, and the mix of outcomes that moment must leave (outcome, changed on the lab).
#: The engine sends every delete before any read-back (its pool is first come, first served), so the
#: two mixes need two moments.
MOMENTS = {
    "while deletes are still queued": {("outcome unknown", True), ("outcome unknown", False)},
    "after some servers finished": {("done", True), ("outcome unknown", True)},
}


def finished(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    out, err = process.communicate(timeout=120)
    result = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    assert_no_traceback(result)
    return result


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_sigkill_mid_bulk_delete(tmp_path: Path, moment: str) -> None:
    per_server = {n: {"faults": f"slow={SLOW_S}"} for n in SLOW}
    lab = start_lab(servers=SERVERS, seed=3, per_server=per_server,
                    exchange={"builds": ["2019 CU15 Feb26SU"], "applied": ["M2.1.0"]})
    try:
        org = lab.org
        servers = {name: org.server(name) for name in sorted(org.servers)}
        before = {name: m2_rules(s) for name, s in servers.items()}
        assert all(before.values()), "every server starts with M2's rules in place"
        audit = tmp_path / "audit.jsonl"
        config = write_lab_config(lab.fleet, tmp_path / "config.toml", audit, call_timeout=20, concurrency=2)
        slow = {lab.fleet.spec.server_name(n) for n in SLOW}

        child = start_cli(lab, "delete", "M2", "--all", "--yes", "--format", "json", "--config", str(config))
        try:
            def mid_run() -> bool:
                """A slow server's delete happened on the lab, unrecorded; and either a server is still
                untouched or two have finished (as ``moment`` says)."""
                recorded = audit.read_text() if audit.exists() else ""
                done = {r["target"] for r in map(json.loads, recorded.splitlines()) if r["kind"] == "result"}
                if not any(not m2_rules(servers[n]) and n not in done for n in slow):
                    return False
                if moment == "after some servers finished":
                    return len(done) >= 2
                return any(m2_rules(s) == before[n] for n, s in servers.items())

            wait_for(mid_run, child, "a slow server's delete")
            child.send_signal(signal.SIGKILL)
        finally:
            child.communicate(timeout=10)
        assert child.returncode == -signal.SIGKILL

        # The next start (two of them at once): the audit log has every planned server, with its outcome
        # or "outcome unknown" ...
        audit_run = start_cli(lab, "audit", "--format", "json", "--config", str(config))
        status_run = start_cli(lab, "status", "--format", "json", "--config", str(config))
        listed, status = finished(audit_run), finished(status_run)
        entries = AuditDoc.model_validate_json(listed.stdout).entries
        assert sorted(e.target for e in entries) == sorted(servers), "one change per server, each listed once"
        outcomes = {e.target: e.outcome for e in entries}
        assert set(outcomes.values()) <= {"done", "not_verified", "outcome unknown"}, outcomes
        assert "outcome unknown" in listed.stderr
        backup_of = {e.target: e.backups for e in entries}
        assert all(len(b) == 1 for b in backup_of.values()), backup_of

        # ... and a refresh shows the truth, server by server.
        assert status.returncode == 0, status.stderr
        for server in StatusDoc.model_validate_json(status.stdout).servers:
            truth = lab_facts(servers[server.name])
            rules = sorted(a.name for a in server.artifacts if a.kind.value.startswith("rewrite"))
            assert rules == truth["rules"], server.name
            assert server.blocked == truth["blocked"]

        # Nothing removed is lost: each removed rule is in that server's backup, which restores it.
        changed = {name for name, s in servers.items() if m2_rules(s) != before[name]}
        kinds = {(outcomes[name], name in changed) for name in servers}
        assert kinds >= MOMENTS[moment], (outcomes, changed)
        for name, server in servers.items():
            on_server = backups(server)
            if name not in changed:
                assert outcomes[name] == "outcome unknown", (name, outcomes[name])  # a delete would show
                continue
            [backup_id] = backup_of[name]
            assert backup_id in on_server, (name, backup_id, list(on_server))
            assert set(before[name]) - set(m2_rules(server)) <= on_server[backup_id], name
        # Restore them all (or, after the late kill, one server of each outcome: the test's time).
        to_restore = changed if moment == "while deletes are still queued" else {
            min(n for n in changed if outcomes[n] == outcome) for outcome in ("done", "outcome unknown")}
        restores = {name: start_cli(lab, "restore", backup_of[name][0], "--server", name, "--yes",  # at once
                                    "--format", "json", "--config", str(config)) for name in to_restore}
        for name, process in restores.items():
            restored = finished(process)
            assert restored.returncode == 0, (name, restored.stderr)
            outcome = ActionDoc.model_validate_json(restored.stdout).outcomes
            assert [o.status.value for o in outcome] == ["done"], (name, outcome)
            assert m2_rules(servers[name]) == before[name], name
    finally:
        lab.stop()
