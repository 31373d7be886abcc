"""Every action end to end on the lab: planned, audited, sent through real pywinrm, verified against
the lab's own state — against both block-matching settings."""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import aclosing
from pathlib import Path

import pytest
from emconsole.backends.lab.exchange.directory import is_blocked as lab_is_blocked
from enginefixture import collect, lab_engine, refreshed

from emconsole.audit import Change
from emconsole.engine import FleetEngine, PlanError, ReadOnlyError
from emconsole.labconfig import Lab
from emconsole.models import ActionKind, ActionOutcome, ActionRequest, ActionScope, OutcomeStatus

EX1 = "LAB-EX01"
M2_ON_EX1 = {1: {"exchange": {"applied": ["M2"]}}}


async def act(engine: FleetEngine, **fields: object) -> list[ActionOutcome]:
    plan = engine.plan(ActionRequest(**fields))  # type: ignore[arg-type]
    for step in plan.steps:
        assert (step.script_text == step.script.text and "Set-" in step.script_text) or step.script_text
    return await collect(engine.execute(plan))


def iis_snapshot(lab: Lab, name: str) -> dict[str, str]:
    """Every IIS configuration of the server as IIS reads it (schema defaults filled in: a restore
    that writes them out explicitly, as real IIS does, reads back the same)."""
    iis = lab.org.server(name).iis
    return {loc: iis.effective(loc) for loc in iis.config}


@pytest.fixture(params=["short", "full"])
def block_match(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_block_then_unblock_verified(tmp_path: Path, block_match: str) -> None:
    lab, engine = lab_engine(tmp_path, servers=2, per_server=M2_ON_EX1, exchange={"block_match": block_match})
    try:
        await refreshed(engine)
        [out] = await act(engine, kind=ActionKind.BLOCK, servers=(EX1,), mitigation_ids=("M2",))
        assert out.status is OutcomeStatus.DONE, out
        record = lab.org.server(EX1).record
        assert lab_is_blocked("M2.1.0", record.blocked, block_match), record.blocked
        assert engine.view(EX1).state.is_blocked("M2.1.0")  # type: ignore[union-attr]
        [out] = await act(engine, kind=ActionKind.UNBLOCK, servers=(EX1,), mitigation_ids=("M2",))
        assert out.status is OutcomeStatus.DONE, out
        assert record.blocked == []
        recs = engine.audit.records()
        assert [r["kind"] for r in recs] == ["intent", "result"] * 2
        assert all(len(r["script_sha256"]) == 64 for r in recs if r["kind"] == "intent")
        assert engine.audit.unknown_outcomes() == []
    finally:
        await engine.aclose()
        lab.stop()


async def test_block_racing_a_concurrent_change_is_detected(tmp_path: Path) -> None:
    lab, engine = lab_engine(tmp_path, servers=1)
    try:
        await refreshed(engine)
        plan = engine.plan(ActionRequest(kind=ActionKind.BLOCK, servers=(EX1,), mitigation_ids=("M2",)))
        lab.org.server(EX1).record.blocked = ["M1"]  # another admin, between our read and our write
        [out] = await collect(engine.execute(plan))
        assert out.status is OutcomeStatus.FAILED and "changed since" in out.detail, out
        assert lab.org.server(EX1).record.blocked == ["M1"], "the concurrent change was overwritten"
    finally:
        await engine.aclose()
        lab.stop()


async def test_delete_then_restore_round_trips_exactly(tmp_path: Path) -> None:
    lab, engine = lab_engine(tmp_path, servers=1, per_server=M2_ON_EX1)
    try:
        views = await refreshed(engine)
        assert any(a.mitigation_id and a.mitigation_id.startswith("M2") for a in views[EX1].state.artifacts)  # type: ignore[union-attr]
        before = iis_snapshot(lab, EX1)
        [out] = await act(engine, kind=ActionKind.DELETE, servers=(EX1,), mitigation_ids=("M2",))
        assert out.status is OutcomeStatus.DONE, out.detail
        assert out.backup and out.backup.get("backup_id")
        assert iis_snapshot(lab, EX1) != before
        assert lab_is_blocked("M2.1.0", lab.org.server(EX1).record.blocked, "short")
        result = [r for r in engine.audit.records() if r["kind"] == "result"][-1]
        assert result["backups"] and result["backups"][0]["backup_id"] == out.backup["backup_id"]
        [out2] = await act(engine, kind=ActionKind.RESTORE, servers=(EX1,), backup_id=out.backup["backup_id"])
        assert out2.status is OutcomeStatus.DONE, out2.detail
        after = iis_snapshot(lab, EX1)
        assert after == before, (before, after)
    finally:
        await engine.aclose()
        lab.stop()


async def test_reapply_new_process_then_pending_until_seen(tmp_path: Path) -> None:
    lab, engine = lab_engine(tmp_path, servers=1)
    try:
        await refreshed(engine)
        old = lab.org.server(EX1).windows.services["msexchangemitigation"].pid
        [out] = await act(engine, kind=ActionKind.REAPPLY, servers=(EX1,), mitigation_ids=("PING1",))
        assert out.status is OutcomeStatus.DONE, out
        assert lab.org.server(EX1).windows.services["msexchangemitigation"].pid != old
        assert engine.view(EX1).pending_check == ("PING1",)
        await refreshed(engine)  # PING1 is applied: the pending mark goes
        assert engine.view(EX1).pending_check == ()
    finally:
        await engine.aclose()
        lab.stop()


async def test_disable_enable_server_and_org(tmp_path: Path) -> None:
    lab, engine = lab_engine(tmp_path, servers=3)
    try:
        await refreshed(engine)
        [out] = await act(engine, kind=ActionKind.DISABLE, servers=(EX1,))
        assert out.status is OutcomeStatus.DONE and lab.org.server(EX1).record.mitigations_enabled is False
        [out] = await act(engine, kind=ActionKind.ENABLE, servers=(EX1,))
        assert out.status is OutcomeStatus.DONE and lab.org.server(EX1).record.mitigations_enabled is True
        servers = tuple(v.name for v in engine.views())
        plan = engine.plan(ActionRequest(kind=ActionKind.DISABLE, servers=servers, scope=ActionScope.ORG))
        assert len(plan.steps) == 1, "an org change runs once"
        [out] = await collect(engine.execute(plan))
        assert out.status is OutcomeStatus.DONE and lab.org.directory.org.mitigations_enabled is False
    finally:
        await engine.aclose()
        lab.stop()


async def test_a_plan_is_on_record_before_its_first_change_and_a_cancelled_wait_is_not_sent(
        tmp_path: Path) -> None:
    """Plan B (EX01, EX02) starts while plan A holds EX01 (a slow server): B's EX02 change finishes
    first, and by then B's EX01 intent must already be in the audit log (a crash now would leave it
    listed). Closing B there cancels its EX01 change before it was sent: "not sent", never "unknown"."""
    lab, engine = lab_engine(tmp_path, servers=2, per_server={1: {"faults": "slow=1"}})
    try:
        await refreshed(engine)
        plan_a = engine.plan(ActionRequest(kind=ActionKind.BLOCK, servers=(EX1,), mitigation_ids=("M2",)))
        plan_b = engine.plan(ActionRequest(kind=ActionKind.BLOCK, servers=(EX1, "LAB-EX02"),
                                           mitigation_ids=("M1",)))
        a = asyncio.ensure_future(collect(engine.execute(plan_a)))
        while engine.view(EX1).busy is None:
            await asyncio.sleep(0.01)
        async with aclosing(engine.execute(plan_b)) as b:
            first = await anext(b)
            assert first.server == "LAB-EX02" and first.status is OutcomeStatus.DONE, first
            b_records = [(r["kind"], r["target"]) for r in engine.audit.records()
                         if r["kind"] == "result" or r["mitigation_ids"] == ["M1"]]
            assert b_records.index(("intent", EX1)) < b_records.index(("result", "LAB-EX02")), b_records
        [out_a] = await a
        assert out_a.status is OutcomeStatus.DONE, out_a
        blocked = lab.org.server(EX1).record.blocked
        assert "M2" in blocked and not any(b.startswith("M1") for b in blocked), "B's EX01 change was sent"
        results = {(r["target"], r["action"], r["outcome"], r["detail"]) for r in engine.audit.records()
                   if r["kind"] == "result" and r["target"] == EX1}
        assert (EX1, "block", "not_sent", "cancelled before it was sent") in results, results
        assert engine.audit.unknown_outcomes() == []
    finally:
        await engine.aclose()
        lab.stop()


async def test_a_plan_cancelled_while_its_intents_are_written_is_on_record_as_not_sent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The intents' write runs on in its thread when the operator cancels meanwhile: once it ends, each
    intent gets its "not sent" result, so the next start lists no "outcome unknown"; nothing is sent."""
    lab, engine = lab_engine(tmp_path, servers=2)
    try:
        await refreshed(engine)
        plan = engine.plan(ActionRequest(kind=ActionKind.BLOCK, servers=(EX1, "LAB-EX02"),
                                         mitigation_ids=("M2",)))
        write = engine.audit.intents
        writing = threading.Event()

        def slow_write(changes: list[Change]) -> list[str]:
            writing.set()
            time.sleep(0.3)
            return write(changes)

        monkeypatch.setattr(engine.audit, "intents", slow_write)
        running = asyncio.ensure_future(collect(engine.execute(plan)))
        await asyncio.to_thread(writing.wait, 5)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        records = engine.audit.records()
        assert sorted((r["kind"], r["target"]) for r in records) == [
            ("intent", EX1), ("intent", "LAB-EX02"), ("result", EX1), ("result", "LAB-EX02")]
        assert {r["outcome"] for r in records if r["kind"] == "result"} == {"not_sent"}
        assert engine.audit.unknown_outcomes() == []
        assert all(lab.org.server(n).record.blocked == [] for n in (EX1, "LAB-EX02"))
    finally:
        await engine.aclose()
        lab.stop()


async def test_read_only_refuses_every_change_but_reads(tmp_path: Path) -> None:
    lab, engine = lab_engine(tmp_path, servers=1)
    try:
        await refreshed(engine)
        plan = engine.plan(ActionRequest(kind=ActionKind.BLOCK, servers=(EX1,), mitigation_ids=("M2",)))
        engine.read_only = True
        for kind in (ActionKind.BLOCK, ActionKind.REAPPLY, ActionKind.DISABLE):
            ids = ("M2",) if kind is ActionKind.BLOCK else ()
            with pytest.raises(ReadOnlyError):
                engine.plan(ActionRequest(kind=kind, servers=(EX1,), mitigation_ids=ids))
        with pytest.raises(ReadOnlyError):
            await collect(engine.execute(plan))
        assert lab.org.server(EX1).record.blocked == []
        assert engine.audit.records() == []
        views = await refreshed(engine)
        assert views[EX1].failure is None
        [ocs] = await collect(engine.test_ocs([EX1]))  # allowed: read-only
        assert ocs.failure is None, ocs
    finally:
        await engine.aclose()
        lab.stop()


async def test_plan_is_a_dry_run(tmp_path: Path) -> None:
    lab, engine = lab_engine(tmp_path, servers=2)
    try:
        with pytest.raises(PlanError, match="refresh it first"):
            engine.plan(ActionRequest(kind=ActionKind.BLOCK, servers=(EX1,), mitigation_ids=("M2",)))
        await refreshed(engine)
        sent = lab.fleet.counters.snapshot()["by_action"].get("Command", 0)
        request = ActionRequest(kind=ActionKind.BLOCK, servers=(EX1, "LAB-EX02"), mitigation_ids=("M2",))
        plan = engine.plan(request)
        assert [s.server for s in plan.steps] == [EX1, "LAB-EX02"]
        assert all("$BlockIds = @('M2'" in s.script_text for s in plan.steps)
        assert lab.fleet.counters.snapshot()["by_action"].get("Command", 0) == sent
    finally:
        await engine.aclose()
        lab.stop()
