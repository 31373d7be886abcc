"""The console's WinRM backend, whose calls run in a worker process, against the lab: the same answers
and failures as the in-process backend, deadlines and cancellation carried over the pipe, the
password kept off the worker's command line and environment, a dead worker reported and replaced,
and a worker that cleans up and exits when the console is killed."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from emconsole.backends.base import BackendFailure, RawResult
from emconsole.backends.winrm import process
from emconsole.backends.winrm.backend import WinRMBackend
from emconsole.backends.winrm.pipe import MessagePipe, PipeClosed
from emconsole.backends.winrm.process import WorkerProcessBackend
from hostilekit import cli_env, write_lab_config

from emconsole.labconfig import Lab, lab_password_lookup, lab_servers, start_lab
from emconsole.models import FailureKind
from emconsole.remote.scripts import RemoteScript, build_status

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def tiny(name: str) -> RemoteScript:
    return RemoteScript("status", 1, name, "Write-Output 'ok'")


def _outcome(backend: WinRMBackend | WorkerProcessBackend, lab: Lab, index: int) -> tuple[object, ...]:
    server = lab_servers(lab.fleet)[index]
    try:
        result = backend.run(server, build_status(server.name, "snapin", [], []), 10.0)
    except BackendFailure as exc:
        return ("failed", exc.failure.kind, exc.may_have_run, exc.exit_code)
    try:
        document = json.loads(result.stdout)
    except ValueError:
        return ("done", result.exit_code, "not JSON")
    return ("done", result.exit_code, document["computer"], document["code"])


def test_same_answers_and_failures_as_in_process() -> None:
    faults = "refuse:2;wrong-credentials:3;garbage:4;ems-unavailable:5;http-error=503:6"
    lab = start_lab(servers=6, faults=faults)
    inside = WinRMBackend(lab_password_lookup(lab.fleet))
    worker = WorkerProcessBackend(lab_password_lookup(lab.fleet), concurrency=4)
    try:
        for index in range(6):
            assert _outcome(worker, lab, index) == _outcome(inside, lab, index), f"server {index + 1}"
        assert _outcome(worker, lab, 0)[0] == "done"
        assert [_outcome(worker, lab, i)[1] for i in (1, 2)] == [FailureKind.UNREACHABLE, FailureKind.AUTH]
    finally:
        worker.close()
        inside.close()
        lab.stop()
    snap = lab.fleet.counters.snapshot()
    assert snap["open_shells"] == 0 and snap["running_commands"] == 0, snap


def _worker_pid(backend: WorkerProcessBackend) -> int:
    assert backend.worker_pid is not None
    return backend.worker_pid


def test_password_reaches_the_worker_over_the_pipe_only() -> None:
    lab = start_lab(servers=1)
    backend = WorkerProcessBackend(lab_password_lookup(lab.fleet))
    try:
        [server] = lab_servers(lab.fleet)
        backend.start()  # before any call, as the console does
        pid = _worker_pid(backend)
        assert backend.run(server, tiny(server.name), 5.0).stdout.strip() == "ok"
        assert _worker_pid(backend) == pid
        secret = lab.fleet.spec.password.encode()
        assert secret not in Path(f"/proc/{pid}/cmdline").read_bytes()
        assert secret not in Path(f"/proc/{pid}/environ").read_bytes()
    finally:
        backend.close()
        lab.stop()


def test_deadline_and_cancel_reach_the_workers_call() -> None:
    lab = start_lab(servers=2, faults="slow=inf:2")
    backend = WorkerProcessBackend(lab_password_lookup(lab.fleet))
    servers = lab_servers(lab.fleet)
    try:
        assert backend.run(servers[0], tiny(servers[0].name), 5.0).stdout.strip() == "ok"
        started = time.monotonic()
        with pytest.raises(BackendFailure) as info:
            backend.run(servers[1], tiny(servers[1].name), 0.5)
        assert info.value.failure.kind is FailureKind.TIMEOUT and info.value.may_have_run
        assert "receive" in info.value.failure.message
        assert time.monotonic() - started < 2.0
        cancel = threading.Event()
        threading.Timer(0.3, cancel.set).start()
        with pytest.raises(BackendFailure, match="cancelled"):
            backend.run(servers[1], tiny(servers[1].name), 30.0, cancel)
        assert time.monotonic() - started < 10.0, "the cancel never reached the worker's receive loop"
        assert backend.run(servers[0], tiny(servers[0].name), 5.0).stdout.strip() == "ok"
    finally:
        backend.close()
        lab.stop()
    snap = lab.fleet.counters.snapshot()
    assert snap["open_shells"] == 0 and snap["running_commands"] == 0, snap


def test_a_killed_worker_fails_its_calls_and_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process, "RESTART_AFTER_S", 0.0)
    lab = start_lab(servers=2, faults="slow=inf:2")
    backend = WorkerProcessBackend(lab_password_lookup(lab.fleet))
    servers = lab_servers(lab.fleet)
    try:
        assert backend.run(servers[0], tiny(servers[0].name), 5.0).stdout.strip() == "ok"
        pid = _worker_pid(backend)
        threading.Timer(0.5, os.kill, args=(pid, signal.SIGKILL)).start()
        started = time.monotonic()
        with pytest.raises(BackendFailure) as info:
            backend.run(servers[1], tiny(servers[1].name), 30.0)
        assert time.monotonic() - started < 5.0
        assert info.value.may_have_run, "the hung command was on the server: it may have run"
        assert "worker process is gone: it exited with code -9" in info.value.failure.message
        assert backend.run(servers[0], tiny(servers[0].name), 5.0).stdout.strip() == "ok"
        assert _worker_pid(backend) != pid
    finally:
        backend.close()
        lab.stop()


def test_a_worker_that_stops_reading_fails_the_call_instead_of_blocking_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process, "SEND_TIMEOUT_S", 0.5)
    lab = start_lab(servers=1)
    backend = WorkerProcessBackend(lab_password_lookup(lab.fleet))
    [server] = lab_servers(lab.fleet)
    try:
        assert backend.run(server, tiny(server.name), 5.0).stdout.strip() == "ok"
        pid = _worker_pid(backend)
        os.kill(pid, signal.SIGSTOP)  # hung: reads nothing more
        try:
            big = RemoteScript("status", 1, server.name, "Write-Output '" + "x" * 2_000_000 + "'")
            started = time.monotonic()
            with pytest.raises(BackendFailure, match="worker process is gone") as info:
                backend.run(server, big, 30.0)
            assert time.monotonic() - started < 5.0
            assert not info.value.may_have_run, "the call never reached the worker whole"
        finally:
            os.kill(pid, signal.SIGKILL)
    finally:
        backend.close()
        lab.stop()


def test_a_worker_that_cannot_start_says_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'ModuleNotFoundError: No module named winrm' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    lab = start_lab(servers=1)
    backend = WorkerProcessBackend(lab_password_lookup(lab.fleet))
    try:
        [server] = lab_servers(lab.fleet)
        with pytest.raises(BackendFailure) as info:
            backend.run(server, tiny(server.name), 5.0)
        assert "exited with code 3: ModuleNotFoundError: No module named winrm" in info.value.failure.message
        with pytest.raises(BackendFailure, match="worker process is gone"):  # not started again at once
            backend.run(server, tiny(server.name), 5.0)
        monkeypatch.setattr(sys, "executable", str(tmp_path / "missing"))
        monkeypatch.setattr(process, "RESTART_AFTER_S", 0.0)
        with pytest.raises(BackendFailure, match="could not be started"):
            backend.run(server, tiny(server.name), 5.0)
    finally:
        backend.close()
        lab.stop()


CONSOLE = textwrap.dedent("""
    import sys
    from pathlib import Path
    from emconsole.backends.winrm.process import WorkerProcessBackend
    from emconsole.backends.winrm.settings import password_lookup
    from emconsole.config import parse_config
    from emconsole.credentials import PasswordSource
    from emconsole.remote.scripts import RemoteScript

    config = parse_config(Path(sys.argv[1]).read_text())
    backend = WorkerProcessBackend(password_lookup(PasswordSource()))
    for server in config.servers:  # the last one never answers
        print(backend.run(server, RemoteScript("status", 1, server.name, "Write-Output 'ok'"), 60.0).stdout,
              flush=True)
""")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX only")
def test_worker_cleans_up_and_exits_when_the_console_is_killed(tmp_path: Path) -> None:
    lab = start_lab(servers=2, faults="slow=inf:2")
    try:
        config = write_lab_config(lab.fleet, tmp_path / "config.toml", tmp_path / "audit.jsonl")
        console = subprocess.Popen([sys.executable, "-c", CONSOLE, str(config)], env=cli_env(lab.fleet),
                                   stdout=subprocess.PIPE, text=True)
        try:
            assert console.stdout is not None and console.stdout.readline().strip() == "ok"
            deadline = time.monotonic() + 30
            while lab.fleet.counters.snapshot()["running_commands"] < 1:
                assert time.monotonic() < deadline, "the hung call never reached the lab"
                time.sleep(0.05)
            [worker] = _children(console.pid)
            console.send_signal(signal.SIGKILL)
        finally:
            console.wait(10)
        deadline = time.monotonic() + 20
        while _alive(worker) or lab.fleet.counters.snapshot()["open_shells"]:
            assert time.monotonic() < deadline, f"the worker outlived it: {lab.fleet.counters.snapshot()}"
            time.sleep(0.1)
        assert lab.fleet.counters.snapshot()["running_commands"] == 0
    finally:
        lab.stop()


def test_pipe_refuses_what_is_not_a_message() -> None:
    for frame in (struct.pack(">I", 3) + b"{x}", struct.pack(">I", 2) + b"[]", struct.pack(">I", 2**31),
                  struct.pack(">I", 10) + b"{}", b"\x00\x00"):
        ours, theirs = socket.socketpair()
        theirs.sendall(frame)
        theirs.close()
        pipe = MessagePipe(ours)
        with pytest.raises(PipeClosed):
            pipe.receive()
        pipe.close()


def test_pipe_carries_results_and_failures_intact() -> None:
    from emconsole.backends.winrm.pipe import failure_to_message, outcome_from_message, result_to_message

    from emconsole.models import ServerFailure

    result = RawResult(stdout="\x00\u2018'$(x)`\n\x1b[31m", stderr="e", exit_code=1, duration_s=0.5,
                       round_trips=2, bytes_sent=10, bytes_received=20, shell_opened=True)
    failure = BackendFailure(ServerFailure(kind=FailureKind.TLS, message="m", detail="d", raw_output="r"),
                             duration_s=1.5, round_trips=1, stdout="o", stderr="s", exit_code=None,
                             may_have_run=True)
    ours, theirs = socket.socketpair()
    a, b = MessagePipe(ours), MessagePipe(theirs)
    try:
        a.send(result_to_message(1, result))
        a.send(failure_to_message(2, failure))
        assert outcome_from_message(b.receive()) == result
        back = outcome_from_message(b.receive())
        assert isinstance(back, BackendFailure)
        assert (back.failure, back.duration_s, back.round_trips, back.stdout, back.stderr, back.exit_code,
                back.may_have_run) == (failure.failure, 1.5, 1, "o", "s", None, True)
    finally:
        a.close()
        b.close()
