"""Exposure end to end: lab fleets scripted with known builds and states, read through real pywinrm by
the engine, produce exactly the expected exposure table — every state and every reason — and
leftovers on patched servers are found and deleted with backups."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from emconsole.backends.lab.exchange.builds import Build
from enginefixture import collect, lab_engine, refreshed

from emconsole.exposure import Exposure, ExposureState, Reason, assess, assess_fleet, leftover_deletions
from emconsole.models import OutcomeStatus

M1, M2 = "CVE-2022-41040", "CVE-2026-42897"
CU15 = "2019 CU15 Feb26SU"
P, X, F, U = ExposureState.PROTECTED, ExposureState.EXPOSED, ExposureState.FIXED, ExposureState.UNKNOWN
OWA_LOCATION = "Default Web Site/owa"
M2_RULE = "EEMS M2.1 OWA CSP - outbound"


def ex(**exchange: object) -> dict[str, object]:
    return {"exchange": {"build": CU15, **exchange}}


FLEET = {
    1: ex(),                                                    # warm: EM applied M2
    2: ex(applied=["M2"], blocked=["M2"]),
    3: ex(applied=[], blocked=["M2"]),
    4: ex(applied=[], mitigations_enabled=False),
    5: ex(applied=["M2"], mitigations_enabled=False),
    6: ex(applied=[], service="stopped"),
    7: ex(applied=["M2"], service="disabled"),
    8: {**ex(), "faults": "ocs-unreachable"},
    9: ex(build="2016 CU23 Oct22SU", m1="leftover"),            # cannot fetch since Jan 2025
    10: ex(applied=[]),                                         # service just started: check due in 10 min
    11: ex(applied=[]),                                         # its owa application will be missing
    12: ex(applied=["M2"]),                                     # its rule will be deleted by hand
    13: ex(build="Exchange SE RTM Jul26SU", applied=["M2", "M1"]),
    14: {**ex(), "faults": "ems-unavailable"},
    15: ex(applied=["M2"]),                                     # updated to a build the table does not know
    16: ex(),                                                   # updated to a CU the table does not know
}

# (server number, CVE) -> (state, reason codes); M1 is fixed on every 2019 CU15 / SE server.
EXPECTED: dict[tuple[int, str], tuple[ExposureState, tuple[Reason, ...]]] = {
    (1, M2): (P, ()),
    (2, M2): (P, (Reason.BLOCKED,)),
    (3, M2): (X, (Reason.BLOCKED,)),
    (4, M2): (X, (Reason.EM_OFF_SERVER,)),
    (5, M2): (P, (Reason.EM_OFF_SERVER,)),
    (6, M2): (X, (Reason.SERVICE_STOPPED,)),
    (7, M2): (P, (Reason.SERVICE_STOPPED,)),
    (8, M2): (X, (Reason.OCS_UNREACHABLE,)),
    (9, M1): (P, (Reason.OCS_UNREACHABLE,)),
    (9, M2): (X, (Reason.OCS_UNREACHABLE,)),
    (10, M2): (X, (Reason.NOT_APPLIED_YET,)),
    (11, M2): (X, (Reason.NOT_APPLIED_YET,)),
    (12, M2): (X, (Reason.ARTIFACT_MISSING,)),
    (13, M1): (F, ()),
    (13, M2): (F, ()),
    (14, M1): (U, (Reason.NOT_READ,)),
    (14, M2): (U, (Reason.NOT_READ,)),
    (15, M2): (U, (Reason.FIX_UNKNOWN,)),
    (16, M1): (U, (Reason.UNKNOWN_BUILD,)),
    (16, M2): (U, (Reason.UNKNOWN_BUILD,)),
}


def name(number: int) -> str:
    return f"LAB-EX{number:02d}"


def table(exposures: list[Exposure]) -> dict[tuple[int, str], tuple[ExposureState, tuple[Reason, ...]]]:
    return {(int(e.server[-2:]), e.cve): (e.state, e.reason_codes) for e in exposures}


async def test_scripted_fleet_gives_the_expected_exposure_table(tmp_path: Path) -> None:
    lab, engine = lab_engine(tmp_path, servers=len(FLEET), per_server=FLEET, call_timeout=10.0)
    try:
        org = lab.org
        org.server(name(12)).iis.remove(OWA_LOCATION, "system.webServer/rewrite/outboundRules",
                                        {"name": M2_RULE})
        org.server(name(15)).record.build = Build("Exchange 2019", "CU15", "Jun26SU", "15.2.1748.50",
                                                  date(2026, 6, 9))
        org.server(name(16)).record.build = Build("Exchange 2019", "CU16", "", "15.2.1900.5",
                                                  date(2026, 6, 1))
        await refreshed(engine)
        got = table(assess_fleet(engine.views(), engine.knowledge))
        expected = {k: v for k, v in EXPECTED.items()}
        for number in FLEET:
            if number not in (9, 14, 16):
                expected.setdefault((number, M1), (F, ()))
        assert got == expected
        assert {s for s, _ in got.values()} == set(ExposureState)
        reasons = {r for _, codes in got.values() for r in codes}
        assert reasons == set(Reason) - {Reason.EM_OFF_ORG, Reason.APPLY_FAILED}  # org off: next test

        fixed = assess(engine.view(name(13)), M2, engine.knowledge)
        assert [lo.mitigation_id for lo in fixed.leftovers] == ["M2"]
        assert "Sources disagree" in fixed.note
        assert "in place" in assess(engine.view(name(15)), M2, engine.knowledge).reasons[0].text

        # The EM check due 10 minutes after the start: EX10 gets M2, EX11 fails to apply it (its owa
        # application is gone), EX12's deleted rule comes back (not blocked), EX03 stays blocked.
        del org.server(name(11)).iis.apps["Default Web Site"]["owa"]
        org.advance(timedelta(minutes=11))
        await refreshed(engine)
        after = table(assess_fleet(engine.views(), engine.knowledge, M2))
        assert after[(10, M2)] == (P, ())
        assert after[(11, M2)] == (X, (Reason.APPLY_FAILED,))
        assert after[(12, M2)] == (P, ())
        assert after[(3, M2)] == (X, (Reason.BLOCKED,))
    finally:
        await engine.aclose()
        lab.stop()


async def test_org_switch_off_and_full_id_blocks(tmp_path: Path) -> None:
    fleet = {1: ex(applied=["M2"]), 2: ex(applied=[]), 3: ex(applied=[], blocked=["M2.1.0"])}
    lab, engine = lab_engine(tmp_path, servers=3, per_server=fleet,
                             exchange={"org_mitigations_enabled": False, "block_match": "full"})
    try:
        await refreshed(engine)
        got = table(assess_fleet(engine.views(), engine.knowledge, M2))
        assert got == {
            (1, M2): (P, (Reason.EM_OFF_ORG,)),
            (2, M2): (X, (Reason.EM_OFF_ORG,)),
            (3, M2): (X, (Reason.EM_OFF_ORG, Reason.BLOCKED)),
        }
    finally:
        await engine.aclose()
        lab.stop()


async def test_leftovers_on_patched_servers_are_deleted_with_backups(tmp_path: Path) -> None:
    fleet = {1: ex(build="Exchange SE RTM Jul26SU", applied=["M2"]),
             2: ex(build="2019 CU14 Feb26SU", applied=["M1"]),
             3: ex()}
    lab, engine = lab_engine(tmp_path, servers=3, per_server=fleet)
    try:
        await refreshed(engine)
        exposures = assess_fleet(engine.views(), engine.knowledge)
        requests = leftover_deletions(exposures)
        assert sorted((r.mitigation_ids, r.servers) for r in requests) == [
            (("M1",), (name(2),)), (("M2",), (name(1),))]
        outcomes = [o for r in requests for o in await collect(engine.execute(engine.plan(r)))]
        assert [o.status for o in outcomes] == [OutcomeStatus.DONE] * 2, outcomes
        assert all(o.backup and o.backup["backup_id"] and o.backup["artifacts"] for o in outcomes)
        results = [r for r in engine.audit.records() if r["kind"] == "result"]
        assert sorted(r["backups"][0]["backup_id"] for r in results) == sorted(
            o.backup["backup_id"] for o in outcomes if o.backup)
        owa = lab.org.server(name(1)).iis
        assert owa.rule_names(OWA_LOCATION, "system.webServer/rewrite/outboundRules/rule") == []
        pre = "system.webServer/rewrite/outboundRules/preConditions/preCondition"
        assert owa.rule_names(OWA_LOCATION, pre) == []
        after = assess_fleet(engine.views(), engine.knowledge)  # the engine read the servers back
        assert not any(e.leftovers for e in after)
        states = {(e.server, e.cve): e.state for e in after}
        assert states[(name(3), M2)] is P, "a protected server was left alone"
    finally:
        await engine.aclose()
        lab.stop()
