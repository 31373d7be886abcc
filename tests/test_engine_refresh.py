"""Refresh of a mixed-fault lab fleet through real pywinrm: every healthy server right, every faulty
one with the right error class, each within its deadline, and no fault delaying another server."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from enginefixture import lab_engine, refreshed

from emconsole.models import FailureKind
from emconsole.remote import scripts

FAULTS = "hang:2;refuse:3;wrong-credentials:4;ems-unavailable:5;ad-second-hop:6;garbage:7;truncate:8"
EXPECTED = {
    "LAB-EX02": FailureKind.TIMEOUT,
    "LAB-EX03": FailureKind.UNREACHABLE,
    "LAB-EX04": FailureKind.AUTH,
    "LAB-EX05": FailureKind.EMS_NOT_LOADABLE,
    "LAB-EX06": FailureKind.AD_SECOND_HOP,
    "LAB-EX07": FailureKind.OUTPUT_NOT_UNDERSTOOD,
    "LAB-EX08": FailureKind.OUTPUT_NOT_UNDERSTOOD,
}


async def test_mixed_fault_fleet(tmp_path: Path) -> None:
    lab, engine = lab_engine(tmp_path, servers=9, faults=FAULTS, call_timeout=2.0)
    try:
        for round_ in ("cold", "warm"):
            started = time.monotonic()
            arrival: dict[str, float] = {}
            views = {}
            async for view in engine.refresh():
                arrival[view.name] = time.monotonic() - started
                views[view.name] = view
            assert len(views) == 9, round_
            for name in ("LAB-EX01", "LAB-EX09"):
                view = views[name]
                assert view.failure is None, (round_, name, view.failure)
                assert view.state is not None and view.state.name == name
                assert view.state.service is not None and view.state.service.status == "Running"
                assert "PING1" in view.state.applied
                assert arrival[name] < 1.5, "a hung server delayed a healthy one"
            for name, kind in EXPECTED.items():
                failure = views[name].failure
                assert failure is not None and failure.kind is kind, (round_, name, failure)
                assert failure.message
            assert "second hop" in (views["LAB-EX06"].failure.message or "")  # type: ignore[union-attr]
            assert "CredSSP" in views["LAB-EX06"].failure.message  # type: ignore[union-attr]
            assert "timed out after" in views["LAB-EX02"].failure.message  # type: ignore[union-attr]
            assert arrival["LAB-EX02"] < 2.0 + 1.0, "the hung server was not cut at its deadline"
            assert not any(v.loading for v in engine.views())
        garbled = [e for e in engine.command_log.entries() if e.target == "LAB-EX08"]
        assert garbled and garbled[-1].raw_output, "raw output of a misunderstood answer is kept"
    finally:
        await engine.aclose()
        lab.stop()


async def test_warm_refresh_is_two_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab, engine = lab_engine(tmp_path, servers=3)
    built: list[str] = []
    build = scripts.build_status
    monkeypatch.setattr(scripts, "build_status", lambda name, *a: built.append(name) or build(name, *a))
    try:
        await refreshed(engine)
        assert sorted(built) == ["LAB-EX01", "LAB-EX02", "LAB-EX03"]
        before = lab.fleet.counters.snapshot()["by_action"]
        views = await refreshed(engine)
        assert len(built) == 3, "the status scripts were built again"
        assert all(v.failure is None for v in views.values())
        warm = [e for e in engine.command_log.entries()[-3:]]
        assert [e.round_trips for e in warm] == [2, 2, 2]
        await engine.aclose()  # waits for the Signals
        after = lab.fleet.counters.snapshot()["by_action"]
        assert after["Command"] - before["Command"] == 3
        assert after["Receive"] - before["Receive"] == 3
        assert after.get("Create", 0) == before.get("Create", 0), "a warm refresh opened a shell"
    finally:
        await engine.aclose()
        lab.stop()


async def test_refreshes_never_overlap(tmp_path: Path) -> None:
    import asyncio

    lab, engine = lab_engine(tmp_path, servers=2, latency_ms=30)
    try:
        order: list[str] = []

        async def run(tag: str) -> None:
            async for _ in engine.refresh():
                order.append(tag)

        await asyncio.gather(run("a"), run("b"))
        assert order in (["a", "a", "b", "b"], ["b", "b", "a", "a"])
    finally:
        await engine.aclose()
        lab.stop()


async def test_lab_only_service_and_app_pool_mitigations_show_what_is_on_the_server(tmp_path: Path) -> None:
    """The lab's config extras (LAB-SVC1, LAB-POOL1) reach the status script through config.knowledge():
    their service and app pool are read and belong to the mitigation EM lists."""
    fleet = {1: {"exchange": {"applied": ["M2", "LAB-SVC1"]}}, 2: {"exchange": {"applied": ["LAB-POOL1"]}}}
    lab, engine = lab_engine(tmp_path, servers=2, per_server=fleet)
    try:
        assert {e.id for e in engine.config.extra_catalogue} == {"LAB-SVC1", "LAB-POOL1"}
        views = await refreshed(engine)
        script = engine.command_log.entries()[-1].script
        assert "'MSExchangeImap4'" in script and "'MSExchangeOWACalendarAppPool'" in script
        found = {(name, m.id): [(a.name, a.service_status, a.start_type, a.app_pool_state)
                                for a in m.artifacts]
                 for name, v in views.items() if v.state is not None for m in v.state.mitigations}
        assert found[("LAB-EX01", "LAB-SVC1.1")] == [("MSExchangeImap4", "Stopped", "Disabled", None)]
        assert found[("LAB-EX02", "LAB-POOL1.1")] == [("MSExchangeOWACalendarAppPool", None, None, "Stopped")]
        assert [a[0] for a in found[("LAB-EX01", "M2.1.0")]] == [
            "EEMS M2.1 OWA CSP - outbound", "EEMS M2.1 OWA SPA HTML shell - precondition"]
    finally:
        await engine.aclose()
        lab.stop()
