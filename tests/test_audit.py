"""The audit log: intent before result, unknown outcomes, no secrets, safe with two writers."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from emconsole.audit import AuditLog, Change
from emconsole.commandlog import CommandLog, CommandLogEntry


def test_intent_then_result_closes_the_change(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    [iid] = log.intents([Change("EX01", "block", ("M2",), script_sha256="ab" * 32)])
    assert log.records()[0]["kind"] == "intent"
    assert log.unknown_outcomes() == []  # this process still carries it out
    log.result(iid, outcome="done", duration_s=1.25, backups=[{"id": "b1"}])
    recs = log.records()
    assert [r["kind"] for r in recs] == ["intent", "result"]
    assert recs[0]["operator"] and recs[0]["script_sha256"] == "ab" * 32
    assert recs[0]["mitigation_ids"] == ["M2"]
    assert recs[1]["id"] == iid and recs[1]["backups"] == [{"id": "b1"}]
    assert AuditLog(log.path).unknown_outcomes() == []


def test_intent_without_result_is_unknown_at_next_start(tmp_path: Path) -> None:
    AuditLog(tmp_path / "a.jsonl").intents([Change("EX02", "delete", ("M1",))])
    unknown = AuditLog(tmp_path / "a.jsonl").unknown_outcomes()
    assert [(u.target, u.action, u.mitigation_ids) for u in unknown] == [("EX02", "delete", ("M1",))]


def test_secrets_are_refused(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.jsonl")
    with pytest.raises(ValueError, match="secret"):
        log.intents([Change("EX01", "block", details={"password": "x"})])
    assert log.records() == []


def test_torn_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    log = AuditLog(path)
    log.intents([Change("EX01", "reapply")])
    with path.open("ab") as fh:
        fh.write(b'{"kind": "intent", "id": "tor')
    assert len(AuditLog(path).records()) == 1


def _writer(path: str, tag: str, count: int) -> None:
    log = AuditLog(path)
    for i in range(count):
        [iid] = log.intents([Change(f"{tag}{i}", "block", details={"pad": "x" * 3000})])
        log.result(iid, outcome="done", duration_s=0.0)


def test_two_processes_appending_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), tag, 40)) for tag in ("A", "B")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    lines = path.read_bytes().splitlines()
    assert len(lines) == 160
    assert all(json.loads(line)["kind"] in ("intent", "result") for line in lines)
    assert AuditLog(path).unknown_outcomes() == []


def test_command_log_is_bounded_and_mirrored_to_a_file(tmp_path: Path) -> None:
    from datetime import datetime, timezone

    log = CommandLog(max_entries=3, path=tmp_path / "cmd.jsonl")
    seen: list[str] = []
    log.subscribe(lambda e: seen.append(e.target))
    for i in range(5):
        log.add(CommandLogEntry(target=f"EX{i}", started=datetime.now(timezone.utc), duration=0.1,
                                round_trips=2, exit_code=0, bytes=10, first_error_line="", script="Get-Date",
                                raw_output="{}"))
    assert [e.target for e in log.entries()] == ["EX2", "EX3", "EX4"]
    assert seen == [f"EX{i}" for i in range(5)]
    assert len((tmp_path / "cmd.jsonl").read_text().splitlines()) == 5
