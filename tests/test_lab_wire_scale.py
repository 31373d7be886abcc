"""500 servers (the design target) in one process, Exchange host and all: started, used, stopped;
threads and file descriptors back to baseline."""

from __future__ import annotations

import gc
import os
import threading

import winrm
from labfixture import lab_credentials, start_lab


def _open_fds() -> int:
    return len(os.listdir(f"/proc/{os.getpid()}/fd")) if os.path.isdir("/proc/self/fd") else 0


def test_500_servers_start_serve_and_stop_cleanly() -> None:
    gc.collect()  # earlier tests' client sockets must not be counted, nor closed during this one
    threads, fds = threading.active_count(), _open_fds()
    fleet = start_lab(servers=500)
    try:
        assert threading.active_count() == threads + 1  # one loop thread for every port
        assert [s.port for s in fleet.servers] == list(range(fleet.first_port, fleet.first_port + 500))
        for number in (1, 250, 500):
            s = winrm.Session(
                fleet.endpoint(number), auth=lab_credentials(fleet), transport="basic", proxy=None
            )
            assert s.run_ps("$env:COMPUTERNAME").std_out.decode().strip() == fleet.server(number).name
        assert fleet.counters.snapshot()["requests"] == 15
    finally:
        fleet.stop()
    assert threading.active_count() == threads
    gc.collect()
    assert _open_fds() == fds
