"""The EM schedule stays exact although ``Organisation.sync`` skips its pass when nothing is due."""

from __future__ import annotations

from datetime import timedelta

from emconsole.backends.lab.exchange.clock import VirtualClock
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


def test_a_running_clock_runs_a_check_the_moment_it_is_due() -> None:
    """``sync`` compares the clock's seconds with the earliest check's: a check due at an odd
    fraction of a second runs once the running clock passes it, not before."""
    wall = [100.0]
    clock = VirtualClock(rate=60.0, monotonic=lambda: wall[0])
    org = make_org({"EX01": {"build": "2019 CU15 Feb26SU"}})
    org.clock = clock
    server = org.server("EX01")
    server.next_run = clock.start + timedelta(seconds=90, microseconds=250_001)
    org.due_by(server.next_run)
    before = server.last_run  # the run the lab's history ends with
    wall[0] += 1.504  # 90.24 lab seconds: not yet
    assert org.sync() == 0 and server.last_run == before
    wall[0] += 0.001  # 90.30
    assert org.sync() == 1 and server.last_run == clock.start + timedelta(seconds=90, microseconds=250_001)


def test_many_small_advances_add_up_exactly() -> None:
    clock = VirtualClock()
    for _ in range(36_000):
        clock.advance(0.1)
    assert clock.now() == clock.start + timedelta(hours=1) and clock.seconds() == 3600.0
