"""The WinRM backend through real pywinrm against the lab: no leaks after 1,000 calls, deadlines that
clean up after themselves, shells reopened when the server forgets them, the proxy setting."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from emconsole.backends.base import BackendFailure
from emconsole.backends.winrm.session import ConnectionSettings, make_protocol

from emconsole.labconfig import lab_backend, lab_servers, start_lab
from emconsole.models import FailureKind
from emconsole.remote.scripts import RemoteScript


def tiny(name: str) -> RemoteScript:
    return RemoteScript("status", 1, name, "Write-Output 'ok'")


def test_thousand_calls_leave_no_shell_command_or_thread() -> None:
    lab = start_lab(servers=4, faults="slow=inf:4")
    backend = lab_backend(lab.fleet)
    servers = lab_servers(lab.fleet)
    threads_before = threading.active_count()
    try:
        def burst(index: int) -> int:
            ok = 0
            for _ in range(334):
                result = backend.run(servers[index], tiny(servers[index].name), 5.0)
                ok += result.stdout.strip() == "ok"
            return ok

        with ThreadPoolExecutor(3) as pool:
            assert sum(pool.map(burst, range(3))) == 1002
        for _ in range(5):  # a hung command cut at its deadline, five times
            started = time.monotonic()
            with pytest.raises(BackendFailure) as info:
                backend.run(servers[3], tiny(servers[3].name), 0.5)
            assert info.value.failure.kind is FailureKind.TIMEOUT
            assert "receive" in info.value.failure.message
            assert time.monotonic() - started < 1.5
        backend.close()
        snap = lab.fleet.counters.snapshot()
        assert snap["open_shells"] == 0 and snap["running_commands"] == 0, snap
        assert snap["by_action"]["Create"] == 4, "one shell per server, reused"
        assert snap["by_action"]["Signal"] == snap["by_action"]["Command"] == 1007
        assert threading.active_count() <= threads_before, "a thread was left behind"
    finally:
        backend.close()
        lab.stop()


def test_expired_shell_is_reopened_on_the_same_session() -> None:
    lab = start_lab(servers=1, faults="expire=0.2")
    backend = lab_backend(lab.fleet)
    [server] = lab_servers(lab.fleet)
    try:
        assert backend.run(server, tiny(server.name), 5.0).stdout.strip() == "ok"
        time.sleep(0.4)
        assert backend.run(server, tiny(server.name), 5.0).stdout.strip() == "ok"
        snap = lab.fleet.counters.snapshot()
        assert snap["by_action"]["Create"] == 2
        assert snap["connections_total"] == 1, "reopening the shell dropped the HTTP session"
    finally:
        backend.close()
        lab.stop()


def test_proxy_none_by_default_ignores_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    settings = ConnectionSettings(name="EX01", host="127.0.0.1", port=5985, username="u", password="p")
    proto = make_protocol(settings)
    session = proto.transport.build_session()
    assert not session.proxies.get("http")


def test_missing_extra_is_named() -> None:
    from winrm import transport

    if transport.HAVE_CREDSSP:
        pytest.skip("the credssp extra is installed here")
    with pytest.raises(BackendFailure, match=r"emconsole\[credssp\]"):
        make_protocol(ConnectionSettings(name="EX01", host="h", port=5986, scheme="https",
                                         transport="credssp", username="u", password="p"))


def test_no_proxy_means_no_environment_per_request() -> None:
    """proxy None: requests stops reading proxy variables and ~/.netrc on each request (CPU, and a
    netrc password must never reach a certificate logon); the environment proxy setting keeps them."""
    lab = start_lab(servers=1)
    try:
        server = lab_servers(lab.fleet)[0]
        for proxy, reads_environment in ((None, False), ("legacy_requests", True)):
            proto = make_protocol(ConnectionSettings(name=server.name, host=server.host, port=server.port,
                                                     username=lab.fleet.spec.username,
                                                     password=lab.fleet.spec.password, proxy=proxy))
            shell = proto.open_shell()
            assert proto.transport.session is not None
            assert proto.transport.session.trust_env is reads_environment
            proto.close_shell(shell)
    finally:
        lab.stop()
