"""The WinRM backend through real pywinrm against the lab: no leaks after 1,000 calls, deadlines that
clean up after themselves, shells reopened when the server forgets them, the proxy setting."""

from __future__ import annotations

import re
import socket
import threading
import time
import typing as t
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
import requests
from emconsole.backends.base import BackendFailure
from emconsole.backends.winrm.errors import FAULT_INVALID_SELECTORS
from emconsole.backends.winrm.session import (
    ServerSession,
    _CountingProtocol,
    make_protocol,
)
from emconsole.backends.winrm.settings import ConnectionSettings, settings_from_config
from emconsole.backends.winrm.wsman import PreparedTransport, WSManProtocol
from requests import Session
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from winrm.exceptions import WinRMOperationTimeoutError, WSManFaultError
from winrm.protocol import Protocol
from winrm.transport import Transport

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
    """Basic (HTTP or HTTPS, CA checked) and certificate logons post through urllib3 directly, each message
    with the headers, order and body requests would prepare; NTLM (messages encrypted over HTTP) keeps
    pywinrm's path."""
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
        session = backend._sessions.get(server.name)._protocol.transport.session  # type: ignore[union-attr]
        assert session is not None
        if reused:
            assert len(prepared) == 1, "each message prepared again"
            sent: list[tuple[object, ...]] = []
            urlopen = HTTPConnectionPool.urlopen

            def opening(pool: HTTPConnectionPool, method: str, url: str, **kw: t.Any) -> t.Any:
                sent.append((method, url, list(kw["headers"].items()), kw["body"]))
                return urlopen(pool, method, url, **kw)

            monkeypatch.setattr(HTTPConnectionPool, "urlopen", opening)
            monkeypatch.setattr(session, "send", None)  # requests' own send is not used at all
            assert backend.run(server, tiny(server.name), 10.0).stdout.strip() == "ok"
            assert len(sent) >= 2
            for method, url, headers, body in sent:
                expected = original(session, requests.Request("POST", server.endpoint, data=body))
                assert (method, url, headers, body) == (
                    expected.method, expected.path_url, list(expected.headers.items()), expected.body)
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


# ---------------------------------------------------------------- the lean POST against requests' path

def _pywinrm_path(settings: ConnectionSettings) -> _CountingProtocol:
    """The backend's protocol sending through pywinrm's own Transport (requests' ``Session.send``)."""
    proto = make_protocol(settings)
    proto.transport.__class__ = Transport
    return proto


def _same(text: str) -> str:
    """A message or detail without what differs between two runs (times, timeouts, object addresses)."""
    return re.sub(r"0x[0-9a-f]+", "0x", re.sub(r"\d+\.\d+", "N", text))


def _session_outcome(settings: ConnectionSettings, factory: Callable[[ConnectionSettings], _CountingProtocol],
                     cleanup: ThreadPoolExecutor) -> list[tuple[object, ...]]:
    """Two calls on one ServerSession (cold, then on the kept connection): result or classified failure
    (times and object addresses left out)."""
    session = ServerSession(settings, cleanup, factory)
    outcomes: list[tuple[object, ...]] = []
    try:
        for _ in range(2):
            try:
                result = session.run(tiny(settings.name).encoded_arguments(), 1.5)
                outcomes.append(("ok", result.stdout, result.exit_code, result.round_trips))
            except BackendFailure as exc:
                failure = exc.failure
                timed = failure.kind is FailureKind.TIMEOUT  # how many Receives fit depends on timing
                outcomes.append((failure.kind, _same(failure.message), _same(failure.detail),
                                 None if timed else exc.round_trips, exc.may_have_run))
    finally:
        session.close()
    return outcomes


LAB_CASES: dict[tuple[str, str], list[str]] = {
    ("http", "basic"): ["", "refuse", "reset", "garbage", "truncate", "http-error=503", "http-error=500",
                        "wrong-credentials", "quota=0", "slow=inf", "hang"],
    ("https", "basic"): ["", "tls=wrong-name", "tls=expired"],
    ("https", "certificate"): ["", "wrong-credentials"],
}


@pytest.mark.parametrize(("scheme", "auth"), list(LAB_CASES))
def test_every_lab_fault_fails_as_on_requests_path(scheme: str, auth: str) -> None:
    """Each lab fault, TLS with the lab's CA, with the default trust store and unverified, Basic and
    certificate logons: the lean POST's result or failure (kind, message, detail, round trips, whether
    the script may have run) is the one requests' own path gives, on a cold and on a kept connection."""
    faults = LAB_CASES[(scheme, auth)]
    per_server = {n: {"faults": f} for n, f in enumerate(faults, 1) if f}
    lab = start_lab(servers=len(faults), scheme=scheme, auth=auth, per_server=per_server)
    cleanup = ThreadPoolExecutor(2)
    try:
        for number, server in enumerate(lab_servers(lab.fleet), 1):
            settings = settings_from_config(server, lab.fleet.spec.password)
            variants = [settings]
            if scheme == "https":  # the default trust store (no lab CA): refused; unverified: accepted
                variants += [replace(settings, ca_bundle=None), replace(settings, verify_tls=False)]
            for variant in variants:
                lean = _session_outcome(variant, make_protocol, cleanup)
                assert lean == _session_outcome(variant, _pywinrm_path, cleanup), (faults[number - 1],
                                                                                   variant)
                if scheme == "https" and not faults[number - 1] and variant.ca_bundle is None \
                        and variant.verify_tls:
                    assert lean[0][0] is FailureKind.TLS
                elif not faults[number - 1] or (variant.verify_tls is False and "tls=" in faults[number - 1]):
                    assert lean[0][0] == "ok", (faults[number - 1], variant, lean)
    finally:
        cleanup.shutdown()
        lab.stop()


def test_lean_pool_carries_requests_tls_settings() -> None:
    """The pool the lean POST uses verifies as requests would: the configured CA bundle, else requests'
    default bundle, nothing when tls_verify is off; the client certificate and key for that logon."""
    base = ConnectionSettings(name="EX01", host="127.0.0.1", port=1, scheme="https", username="u",
                              password="p")
    cases = [
        (base, "CERT_REQUIRED", requests.utils.DEFAULT_CA_BUNDLE_PATH, None),
        (replace(base, ca_bundle=__file__), "CERT_REQUIRED", __file__, None),
        (replace(base, verify_tls=False, ca_bundle=__file__), "CERT_NONE", None, None),
        (replace(base, transport="certificate", cert_pem=__file__, cert_key_pem=__file__), "CERT_REQUIRED",
         requests.utils.DEFAULT_CA_BUNDLE_PATH, (__file__, __file__)),
    ]
    for settings, cert_reqs, ca_certs, client in cases:
        proto = make_protocol(settings)
        proto.operation_timeout_sec = 1
        proto.transport.read_timeout_sec = (0.5, 0.5)
        with pytest.raises(requests.exceptions.ConnectionError):  # port 1: refused, after the pool is set
            proto.send_message("<m/>")
        lean = proto.transport._lean  # type: ignore[attr-defined]
        assert lean is not None and isinstance(lean.pool, HTTPSConnectionPool)
        assert (lean.pool.cert_reqs, lean.pool.ca_certs) == (cert_reqs, ca_certs), settings
        if client:
            assert (lean.pool.cert_file, lean.pool.key_file) == client
            assert "Authorization" in lean.headers and "Basic" not in lean.headers["Authorization"]


class Scripted:
    """A loopback HTTP server answering each request it reads with the next scripted raw answer.

    An answer is (bytes, close): close the connection after sending; bytes None: close without answering;
    b"" with close False: never answer (until the client hangs up). ``closed`` is set whenever it closed
    a connection itself; ``received`` holds (request line, headers, body) of every request read.
    """

    def __init__(self, answers: list[tuple[bytes | None, bool]]) -> None:
        self.answers = answers
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.connections = 0
        self.closed = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                line, *fields = head.decode().split("\r\n")
                headers = dict(f.split(": ", 1) for f in fields)
                length = int(headers.get("Content-Length", 0))
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                self.received.append((line, headers, buffer[:length]))
                buffer = buffer[length:]
                answer, close = self.answers.pop(0)
                if answer is None:
                    break
                conn.sendall(answer)
                if close:
                    break
                if not answer:
                    while conn.recv(65536):
                        pass
                    return
        self.closed.set()

    def stop(self) -> None:
        self._listener.close()


def _http(status: str, body: bytes, *headers: str) -> bytes:
    """A raw HTTP/1.1 answer (Content-Length added unless the headers frame the body themselves)."""
    fields = "".join(f"{h}\r\n" for h in headers)
    if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
        fields += f"Content-Length: {len(body)}\r\n"
    return f"HTTP/1.1 {status}\r\n{fields}\r\n".encode() + body


OK = (_http("200 OK", RELATES), False)
FAULT_500 = _http("500 Internal Server Error", _answer(
    '<s:Fault><s:Code><s:Value>s:Receiver</s:Value></s:Code><s:Reason><s:Text xml:lang="en-US">no'
    '</s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/'
    'wsmanfault" Code="2150858843" Machine="m"><f:Message>gone</f:Message></f:WSManFault></s:Detail>'
    "</s:Fault>"))
HOSTILE_ANSWERS: dict[str, list[tuple[bytes | None, bool]]] = {
    "ok, kept alive": [OK, OK],
    "closed while idle": [(OK[0], True), OK],
    "closed after reading the request": [(None, False)],
    "no answer (read timeout)": [(b"", False)],
    "not HTTP": [(b"HELLO THERE\r\n\r\n", True)],
    "truncated body": [(_http("200 OK", RELATES[:40], f"Content-Length: {len(RELATES)}"), True)],
    "broken chunks": [(_http("200 OK", b"zz\r\nabc", "Transfer-Encoding: chunked"), True)],
    "bad gzip": [(_http("200 OK", b"not gzip", "Content-Encoding: gzip"), False)],
    "401": [(_http("401 Unauthorized", b"", 'WWW-Authenticate: Basic realm="x"'), False)],
    "400 empty": [(_http("400 Bad Request", b""), False)],
    "500 WS-Man fault": [(FAULT_500, False)],
    "500 not UTF-8": [(_http("500 Internal Server Error", b"\xff\xfe<html>"), False)],
    "302 to a 404": [(_http("302 Found", b"moved", "Location: /elsewhere"), False),
                     (_http("404 Not Found", b"<html>nothing</html>"), False)],
    "307 to an answer": [(_http("307 Temporary Redirect", b"", "Location: /wsman2"), False), OK],
    "a cookie": [(_http("200 OK", RELATES, "Set-Cookie: affinity=node-2; Path=/"), False), OK],
}


@pytest.mark.parametrize("case", list(HOSTILE_ANSWERS))
def test_hostile_http_answers_fail_as_on_requests_path(case: str) -> None:
    """Two messages against a scripted server: what each returns or raises (type and text), and every
    request the server read (a request that may have reached it is never sent twice; a connection the
    server closed while idle is replaced, not a failure; a cookie goes back; redirects are followed)."""
    seen = []
    for factory in (make_protocol, _pywinrm_path):
        server = Scripted(list(HOSTILE_ANSWERS[case]))
        try:
            proto = factory(ConnectionSettings(name="EX01", host="127.0.0.1", port=server.port,
                                               username="u", password="p"))
            proto.transport.read_timeout_sec = (2.0, 0.5)
            outcomes = []
            for _ in range(2):
                if not server.answers:
                    break
                try:
                    outcomes.append(("returned", proto.send_message("<m/>")))
                except Exception as exc:  # the exception's type and text are the outcome compared
                    outcomes.append(("raised", type(exc), _same(str(exc)).replace(str(server.port), "PORT")))
                if case == "closed while idle":
                    assert server.closed.wait(5)
            requests_read = [(line, h.get("Cookie"), body) for line, h, body in server.received]
            seen.append((outcomes, requests_read, server.connections))
            proto.transport.close_session()
        finally:
            server.stop()
    assert seen[0] == seen[1]
    if case == "closed while idle":
        assert seen[0][0] == [("returned", RELATES)] * 2 and seen[0][2] == 2
    if case == "closed after reading the request":
        assert seen[0][0][0][1] is requests.exceptions.ConnectionError and len(seen[0][1]) == 1
    if case == "a cookie":
        assert seen[0][1][1][1] == "affinity=node-2"


def _urllib3_errors() -> dict[str, Exception]:
    """One exception of each kind urlopen can raise, for the adapter's mapping."""
    from urllib3 import exceptions as u3

    def retried(reason: Exception) -> Exception:
        return u3.MaxRetryError(None, "/wsman", reason)  # type: ignore[arg-type]

    return {
        "connect timeout": retried(u3.ConnectTimeoutError(None, "timed out")),
        "refused": retried(u3.NewConnectionError(None, "refused")),  # type: ignore[arg-type]
        "TLS in retries": retried(u3.SSLError("certificate verify failed: bad")),
        "proxy in retries": retried(u3.ProxyError("proxy", OSError("down"))),
        "too many": retried(u3.ResponseError("too many")),
        "other in retries": retried(u3.ProtocolError("odd")),
        "protocol": u3.ProtocolError("Connection aborted.", OSError("reset")),
        "socket": ConnectionResetError("reset"),
        "closed pool": u3.ClosedPoolError(None, "closed"),  # type: ignore[arg-type]
        "read timeout": u3.ReadTimeoutError(None, "/wsman", "Read timed out."),  # type: ignore[arg-type]
        "TLS": u3.SSLError("handshake"),
        "proxy": u3.ProxyError("proxy", OSError("down")),
        "invalid header": u3.InvalidHeader("bad header"),
        "decode": u3.DecodeError("other urllib3 error"),
        "not urllib3's": ValueError("odd"),
    }


@pytest.mark.parametrize("case", list(_urllib3_errors()))
def test_urlopen_failures_become_requests_exceptions(monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    """Whatever urlopen raises reaches errors.py as the exception (type and text) HTTPAdapter.send
    turns it into."""
    error = _urllib3_errors()[case]

    def failing(self: HTTPConnectionPool, *args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(HTTPConnectionPool, "urlopen", failing)
    seen = []
    for factory in (make_protocol, _pywinrm_path):
        proto = factory(ConnectionSettings(name="EX01", host="127.0.0.1", port=1, username="u", password="p"))
        proto.transport.read_timeout_sec = (1.0, 1.0)
        with pytest.raises(Exception) as info:
            proto.send_message("<m/>")
        seen.append((type(info.value), str(info.value)))
    assert seen[0] == seen[1]


def test_each_request_gets_the_timeouts_armed_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The connect and read timeouts ServerSession._arm sets for each message are the ones urlopen gets."""
    lab = start_lab(servers=1)
    armed: list[object] = []
    given: list[tuple[float | None, float | None]] = []
    send, urlopen = PreparedTransport.send_message, HTTPConnectionPool.urlopen

    def arming(self: PreparedTransport, message: str | bytes) -> bytes:
        armed.append(self.read_timeout_sec)
        return send(self, message)

    def opening(self: HTTPConnectionPool, *args: t.Any, **kwargs: t.Any) -> t.Any:
        given.append((kwargs["timeout"].connect_timeout, kwargs["timeout"].read_timeout))
        return urlopen(self, *args, **kwargs)

    monkeypatch.setattr(PreparedTransport, "send_message", arming)
    monkeypatch.setattr(HTTPConnectionPool, "urlopen", opening)
    try:
        [server] = lab_servers(lab.fleet)
        settings = replace(settings_from_config(server, lab.fleet.spec.password), connect_timeout_s=0.75)
        cleanup = ThreadPoolExecutor(1)
        session = ServerSession(settings, cleanup)
        for deadline in (30.0, 3.0):
            session.run(tiny(server.name).encoded_arguments(), deadline)
        session.close()
        cleanup.shutdown()
        assert len(given) >= 6 and given == armed
        assert all(connect == 0.75 for connect, _ in given)
    finally:
        lab.stop()


def test_unresolvable_name_and_connect_timeout_fail_as_on_requests_path() -> None:
    """A name that does not resolve, and a port that never completes the TCP handshake (a listener
    whose backlog is full): the same classified failure on both paths, in the connect phase."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = listener.getsockname()[1]
    waiting = []
    for _ in range(3):  # fill the backlog: later SYNs are dropped, the next connect times out
        pending = socket.socket()
        pending.setblocking(False)
        pending.connect_ex(("127.0.0.1", port))
        waiting.append(pending)
    cleanup = ThreadPoolExecutor(1)
    try:
        for host, kind, said in (("no-such-host.invalid", FailureKind.UNREACHABLE, "name not resolved"),
                                 ("127.0.0.1", FailureKind.TIMEOUT, "in the connect phase")):
            settings = ConnectionSettings(name="EX01", host=host, port=port, username="u", password="p",
                                          connect_timeout_s=0.3)
            lean = _session_outcome(settings, make_protocol, cleanup)
            assert lean == _session_outcome(settings, _pywinrm_path, cleanup)
            assert lean[0][0] is kind and said in str(lean[0][1]), lean
    finally:
        cleanup.shutdown()
        for pending in waiting:
            pending.close()
        listener.close()


def test_an_explicit_proxy_still_carries_the_messages() -> None:
    """A server behind the configured proxy: messages go to the proxy with the full URL (pywinrm's path,
    not the direct POST), the answers come back."""
    proxy = Scripted([OK, OK])
    try:
        proto = make_protocol(ConnectionSettings(name="EX01", host="ex01.invalid", port=5985, username="u",
                                                 password="p", proxy=f"http://127.0.0.1:{proxy.port}"))
        proto.transport.read_timeout_sec = (2.0, 2.0)
        assert [proto.send_message("<m/>") for _ in range(2)] == [RELATES, RELATES]
        assert [line for line, _, _ in proxy.received] == ["POST http://ex01.invalid:5985/wsman HTTP/1.1"] * 2
    finally:
        proxy.stop()
