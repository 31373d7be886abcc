"""The WinRM backend through real pywinrm against the lab: no leaks after 1,000 calls, deadlines that
clean up after themselves, shells reopened when the server forgets them, the proxy setting."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from emconsole.backends.base import BackendFailure
from emconsole.backends.winrm.errors import FAULT_INVALID_SELECTORS
from emconsole.backends.winrm.session import ConnectionSettings, make_protocol
from emconsole.backends.winrm.wsman import WSManProtocol
from requests import Session
from winrm.exceptions import WinRMOperationTimeoutError, WSManFaultError
from winrm.protocol import Protocol

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


# ---------------------------------------------------------------- WSManProtocol against pywinrm's own

SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
FIXED_ID = uuid.UUID("12345678-1234-5678-1234-567812345678")
HOSTILE = ['S&<"\'>\n\t\r]]>é', 'a"b', "a'b", 'a\'b"c&<', "", "x" * 3000]


def _answer(body: str, header: str = "") -> bytes:
    return (f'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
            f'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
            f'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="{SHELL_URI}">'
            f"<s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>").encode()


RELATES = _answer("", f"<a:RelatesTo>uuid:{FIXED_ID}</a:RelatesTo>")
CREATED = _answer('<w:SelectorSet><w:Selector Name="ShellId">SHELL-1</w:Selector></w:SelectorSet>')
COMMAND = _answer("<rsp:CommandResponse><rsp:CommandId>CMD-1</rsp:CommandId></rsp:CommandResponse>")


def _state(done: bool = True, code: str = "<rsp:ExitCode>3</rsp:ExitCode>") -> str:
    state = "Done" if done else "Running"
    return (f'<rsp:CommandState CommandId="C" State="{SHELL_URI}/CommandState/{state}">{code}'
            "</rsp:CommandState>")


def _recorder(base: type[Protocol]) -> Protocol:
    """``base`` with send_message replaced: records each message, answers from ``proto.answers``."""

    class Recording(base):  # type: ignore[misc,valid-type]
        sent: list[str]
        answers: list[bytes]

        def send_message(self, message: str) -> bytes:
            self.sent.append(message)
            return self.answers.pop(0)

    proto = Recording("http://127.0.0.1:1/wsman", transport="basic", username="u", password="p")
    proto.sent, proto.answers = [], []
    return proto


def _outcome(call: Callable[[], object]) -> tuple[str, object]:
    try:
        return "returned", call()
    except Exception as exc:  # the exception's type is the outcome compared
        return "raised", type(exc)


@pytest.fixture()
def both(monkeypatch: pytest.MonkeyPatch) -> tuple[Protocol, Protocol]:
    """pywinrm's Protocol and ours, both recording, with one fixed MessageID."""
    monkeypatch.setattr(uuid, "uuid4", lambda: FIXED_ID)
    return _recorder(Protocol), _recorder(WSManProtocol)


@pytest.mark.parametrize("value", HOSTILE)
def test_envelopes_are_pywinrms_byte_for_byte(both: tuple[Protocol, Protocol], value: str) -> None:
    """Every message the backend sends, with hostile shell and command IDs and arguments: any
    difference in elements, headers, options, OperationTimeout or escaping fails."""
    for proto in both:
        proto.operation_timeout_sec = 7
        proto.answers.extend([CREATED, CREATED, CREATED, COMMAND, COMMAND, _answer(_state()),  # type: ignore[attr-defined]
                              RELATES, RELATES])
        proto.open_shell(codepage=65001, noprofile=True)
        proto.open_shell(i_stream=value, o_stream=value)
        proto.open_shell(working_directory=value, env_vars={"A": value}, idle_timeout=60, codepage=1252)
        proto.run_command(value, "powershell.exe", ["-EncodedCommand", value, b"b\xc3\xa9"],
                          skip_cmd_shell=True)
        proto.run_command(value, value, (), console_mode_stdin=False)
        proto.get_command_output_raw(value, value)
        proto.cleanup_command(value, value)
        proto.close_shell(value, close_session=False)
    pywinrm, ours = both
    assert ours.sent == pywinrm.sent  # type: ignore[attr-defined]
    assert len(ours.sent) == 8 and all(m.startswith('<?xml version="1.0"') for m in ours.sent)  # type: ignore[attr-defined]


RECEIVE_ANSWERS = {
    "done, two stdout blocks and stderr": _answer(
        '<rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="C">b2s=</rsp:Stream>'
        '<rsp:Stream Name="stderr" CommandId="C">ZXJy</rsp:Stream>'
        '<rsp:Stream Name="stdout" CommandId="C">DQo=</rsp:Stream>'
        '<rsp:Stream Name="stdout" CommandId="C" End="true"></rsp:Stream>'
        f"{_state()}</rsp:ReceiveResponse>"),
    "running": _answer(f'<rsp:Stream Name="stdout">b2s=</rsp:Stream>{_state(done=False, code="")}'),
    "other stream names ignored": _answer(f'<rsp:Stream Name="pr">b2s=</rsp:Stream>{_state()}'),
    "stream without a name": _answer(f"<rsp:Stream>b2s=</rsp:Stream>{_state()}"),
    "bad base64": _answer(f'<rsp:Stream Name="stdout">abc</rsp:Stream>{_state()}'),
    "non-ASCII base64": _answer(f'<rsp:Stream Name="stderr">b2s=é</rsp:Stream>{_state()}'),
    "two Done states": _answer(_state() + _state()),
    "done without exit code": _answer(_state(code="")),
    "empty exit code": _answer(_state(code="<rsp:ExitCode></rsp:ExitCode>")),
    "exit code not a number": _answer(_state(code="<rsp:ExitCode>x</rsp:ExitCode>")),
    "exit code elsewhere": _answer(_state(code="") + "<rsp:ExitCode>5</rsp:ExitCode><x:ExitCode xmlns:x='x'>6"
                                   "</x:ExitCode>"),
    "the root itself a stream": f'<r:Stream xmlns:r="{SHELL_URI}" Name="stdout">b2s=</r:Stream>'.encode(),
    "not XML": b"<html>oops",
    "truncated": _answer(_state())[:-20],
}
SHELL_ANSWERS = {
    "created": CREATED,
    "bare rsp:ShellId only": _answer("<rsp:Shell><rsp:ShellId>S</rsp:ShellId></rsp:Shell>"),
    "empty ShellId": _answer('<w:Selector Name="ShellId"></w:Selector>'),
    "not XML": b"garbage",
}
COMMAND_ANSWERS = {"command": COMMAND, "no CommandId": _answer("<rsp:CommandResponse/>"),
                   "empty CommandId": _answer("<rsp:CommandId/>")}
SIGNAL_ANSWERS = {
    "this request's": RELATES,
    "another request's": _answer("", f"<a:RelatesTo>uuid:{uuid.UUID(int=1)}</a:RelatesTo>"),
    "no RelatesTo": _answer(""),
    "RelatesTo not a UUID": _answer("", "<a:RelatesTo>uuid:nope</a:RelatesTo>"),
    "empty RelatesTo": _answer("", "<a:RelatesTo></a:RelatesTo>"),
}
OPERATIONS: dict[str, tuple[Callable[[Protocol], object], dict[str, bytes]]] = {
    "receive": (lambda p: p.get_command_output_raw("S", "C"), RECEIVE_ANSWERS),
    "create": (lambda p: p.open_shell(codepage=65001, noprofile=True), SHELL_ANSWERS),
    "command": (lambda p: p.run_command("S", "powershell.exe", ["-c", "1"], skip_cmd_shell=True),
                COMMAND_ANSWERS),
    "signal": (lambda p: p.cleanup_command("S", "C"), SIGNAL_ANSWERS),
    "delete": (lambda p: p.close_shell("S", close_session=False), SIGNAL_ANSWERS),
}


@pytest.mark.parametrize(("operation", "case"), [(op, case) for op, (_, answers) in OPERATIONS.items()
                                                 for case in answers])
def test_answers_are_read_as_pywinrm_reads_them(both: tuple[Protocol, Protocol], operation: str,
                                                case: str) -> None:
    """Same result, or the same exception type (which errors.py maps), for good and hostile answers."""
    call, answers = OPERATIONS[operation]
    outcomes = []
    for proto in both:
        proto.answers.append(answers[case])  # type: ignore[attr-defined]
        outcomes.append(_outcome(lambda proto=proto: call(proto)))  # type: ignore[misc]
    assert outcomes[1] == outcomes[0]


def test_faults_from_the_lab_keep_pywinrms_exceptions() -> None:
    """A Receive that outlives its OperationTimeout is pywinrm's WinRMOperationTimeoutError, an unknown
    shell a WSManFaultError with its code, through the reused prepared request."""
    lab = start_lab(servers=1, faults="slow=inf")
    try:
        [server] = lab_servers(lab.fleet)
        proto = make_protocol(ConnectionSettings(name=server.name, host=server.host, port=server.port,
                                                 username=server.username, password=lab.fleet.spec.password))
        proto.operation_timeout_sec = 1
        shell = proto.open_shell(codepage=65001, noprofile=True)
        command = proto.run_command(shell, "powershell.exe", tiny(server.name).encoded_arguments(),
                                    skip_cmd_shell=True)
        with pytest.raises(WinRMOperationTimeoutError):
            proto.get_command_output_raw(shell, command)
        proto.cleanup_command(shell, command)
        with pytest.raises(WSManFaultError) as info:
            proto.get_command_output_raw("no-such-shell", command)
        assert info.value.wsman_fault_code == FAULT_INVALID_SELECTORS
        proto.close_shell(shell)
    finally:
        lab.stop()


@pytest.mark.parametrize(("auth", "scheme", "reused"), [
    ("basic", "http", True), ("basic", "https", True), ("certificate", "https", True),
    ("ntlm", "http", False)])
def test_each_logon_runs_and_only_plain_ones_reuse_the_prepared_request(
        monkeypatch: pytest.MonkeyPatch, auth: str, scheme: str, reused: bool) -> None:
    """Basic (HTTP or HTTPS, CA checked) and certificate logons send copies of one prepared request,
    identical to what requests would prepare; NTLM (messages encrypted over HTTP) keeps pywinrm's path."""
    lab = start_lab(servers=1, auth=auth, scheme=scheme)
    backend = lab_backend(lab.fleet)
    [server] = lab_servers(lab.fleet)
    prepared: list[requests.PreparedRequest] = []
    original = Session.prepare_request

    def counting(self: Session, request: requests.Request) -> requests.PreparedRequest:
        prepared.append(original(self, request))
        return prepared[-1]

    monkeypatch.setattr(Session, "prepare_request", counting)
    try:
        for _ in range(3):
            assert backend.run(server, tiny(server.name), 10.0).stdout.strip() == "ok"
        session = backend._session(server)._protocol.transport.session  # type: ignore[union-attr]
        assert session is not None
        if reused:
            assert len(prepared) == 1, "each message prepared again"
            sent: list[requests.PreparedRequest] = []
            send = session.send
            monkeypatch.setattr(session, "send", lambda p, **kw: sent.append(p) or send(p, **kw))
            assert backend.run(server, tiny(server.name), 10.0).stdout.strip() == "ok"
            for request in sent:
                expected = original(session, requests.Request("POST", request.url, data=request.body))
                assert (request.method, request.url, dict(request.headers), request.body) == (
                    expected.method, expected.url, dict(expected.headers), expected.body)
        else:
            assert len(prepared) >= 10, "an encrypted message went through the reused request"
    finally:
        backend.close()
        lab.stop()


def test_a_cookie_from_the_server_is_sent_back() -> None:
    """Once the session holds a cookie (a load balancer's, say), requests prepares each message again,
    so the cookie goes with it, as it would without the reused request."""
    lab = start_lab(servers=1)
    try:
        [server] = lab_servers(lab.fleet)
        proto = make_protocol(ConnectionSettings(name=server.name, host=server.host, port=server.port,
                                                 username=server.username, password=lab.fleet.spec.password))
        shell = proto.open_shell()
        session = proto.transport.session
        assert session is not None
        session.cookies.set("affinity", "node-2", domain=server.host, path="/")
        sent: list[requests.PreparedRequest] = []
        send = session.send
        session.send = lambda p, **kw: sent.append(p) or send(p, **kw)  # type: ignore[method-assign]
        proto.close_shell(shell)
        assert sent[0].headers.get("Cookie") == "affinity=node-2"
    finally:
        lab.stop()
