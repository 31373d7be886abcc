"""The EM schedule stays exact although ``Organisation.sync`` skips its pass when nothing is due."""

from __future__ import annotations

from test_lab_exchange import make_org, run


def test_a_check_scheduled_after_a_quiet_sync_runs_when_due() -> None:
    org = make_org(
        {
            "EX01": {"build": "2019 CU15 Feb26SU", "faults": {"service-stopped": ""}},
            "EX02": {"build": "2019 CU15 Feb26SU"},  # next check 30 minutes after the start
        }
    )
    assert org.sync() == 0
    started = run(org, "EX01", "Start-Service MSExchangeMitigation")  # first check 10 minutes later
    assert started.exit_code == 0, started.stderr
    assert org.advance(9 * 60) == 0
    assert org.advance(2 * 60) == 1 and org.server("EX01").last_run is not None
    assert org.advance(20 * 60) == 1  # EX02's
    assert org.advance(60 * 60) == 2  # EX01 hourly at 1:10, EX02 at 1:30


def test_a_stopped_service_drops_its_check_when_it_falls_due() -> None:
    org = make_org({"EX01": {"build": "2019 CU15 Feb26SU"}})
    stopped = run(org, "EX01", "Stop-Service MSExchangeMitigation")
    assert stopped.exit_code == 0, stopped.stderr
    assert org.advance(3 * 3600) == 0 and org.server("EX01").next_run is None
