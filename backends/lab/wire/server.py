"""One lab server: an HTTP/1.1 endpoint at ``/wsman`` on its own port, served by the shared event loop.

HTTP is read by hand (a few headers and a Content-Length body: all WinRM clients send) so that one
thread can serve hundreds of ports with keep-alive. Each connection is an ``asyncio.Protocol``:
requests are cut from its buffer as bytes arrive and the waits (latency, a Receive waiting for its
command) are timers, so a request costs no stream reader, future or task step. Transport faults are
applied here, in the order a real stack meets them: latency, hang, HTTP.sys-level 5xx,
authentication, then SOAP.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import math
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emconsole.backends.lab.host import HostResult, PowerShellHost
from emconsole.backends.lab.spec import ServerSpec
from emconsole.backends.lab.wire import soap, wsman_faults
from emconsole.backends.lab.wire.auth import (
    ENCRYPTED_CONTENT_TYPE,
    Authenticator,
    ConnectionAuth,
    DecryptError,
    decrypt_body,
    encrypt_body,
)
from emconsole.backends.lab.wire.cmdline import (
    CMD_EXE_LIMIT,
    CREATE_PROCESS_LIMIT,
    decode,
    full_command_line,
)
from emconsole.backends.lab.wire.codepage import encode_console
from emconsole.backends.lab.wire.counters import Counters
from emconsole.backends.lab.wire.shells import Command, Shell, ShellTable, early_starts

MAX_BODY = 512 * 1024
SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Request Entity Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_TERMINATE_SIGNALS = (
    soap.SHELL_NS + "/signal/terminate",
    soap.SHELL_NS + "/signal/ctrl_c",
    soap.SHELL_NS + "/signal/ctrl_break",
)
# The body element whose CommandId names the command a Send, Receive or Signal is about.
_COMMAND_NODE = {
    soap.ACTION_SEND: soap.RSP_STREAM,
    soap.ACTION_RECEIVE: soap.RSP_DESIRED_STREAM,
    soap.ACTION_SIGNAL: soap.RSP_SIGNAL,
}


@dataclass
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class _Later:
    """An answer that is known only ``delay`` seconds from now (a Receive waiting for its command)."""

    delay: float
    answer: Callable[[], tuple[int, bytes]]


def _html_error(status: int) -> bytes:
    """The body HTTP.sys sends with an error status (not XML: pywinrm raises WinRMTransportError)."""
    reason = _REASONS.get(status, "Error")
    return (
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN""http://www.w3.org/TR/html4/strict.dtd">\r\n'
        f"<HTML><HEAD><TITLE>{reason}</TITLE>\r\n"
        '<META HTTP-EQUIV="Content-Type" Content="text/html; charset=us-ascii"></HEAD>\r\n'
        f"<BODY><h2>{reason}</h2>\r\n<hr><p>HTTP Error {status}. The service is unavailable.</p>\r\n"
        "</BODY></HTML>\r\n"
    ).encode("ascii")


def _parse_head(head: bytes | bytearray) -> tuple[str, str, dict[str, str], int]:
    """Method, path, headers (names lower-cased) and body length of a request head (up to and
    without its blank line); ValueError for what is not HTTP/1.1 we accept."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ValueError("bad request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise ValueError("chunked request bodies are not supported")
    length = int(headers.get("content-length", "0") or 0)
    if not 0 <= length <= MAX_BODY:
        raise ValueError("body too large")
    return parts[0], parts[1], headers, length


def _response_head(
    status: int,
    length: int,
    content_type: str | None,
    extra: tuple[tuple[str, str], ...] = (),
    close: bool = False,
) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}", "Server: Microsoft-HTTPAPI/2.0"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    lines += [f"{k}: {v}" for k, v in extra]
    lines.append(f"Content-Length: {length}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class WireServer:
    """The WS-Management service of one lab server."""

    def __init__(
        self,
        spec: ServerSpec,
        host: PowerShellHost,
        authenticator: Authenticator,
        counters: Counters,
        https: bool,
    ) -> None:
        self.spec = spec
        self.faults = spec.faults
        self.authenticator = authenticator
        self.counters = counters
        self.https = https
        self.shells = ShellTable(
            spec.name,
            authenticator.scheme,
            host,
            counters,
            spec.faults.shell_idle_timeout_s,
            spec.faults.max_shells,
        )
        self.connections: set[Connection] = set()
        self.address = f"{'https' if https else 'http'}://127.0.0.1:{spec.port}/wsman"

    def connection(self) -> Connection:
        """A protocol for one new client connection (``loop.create_server``'s factory)."""
        return Connection(self)

    def close_connections(self) -> None:
        """Abort every connection and drop its pending answer (the lab is stopping)."""
        for connection in list(self.connections):
            connection.abort()

    # -- SOAP ----------------------------------------------------------------------------------------
    def _fault(self, req: soap.Request | None, fault: soap.Fault) -> tuple[int, bytes]:
        self.counters.faults[fault.subcode.split(":")[-1]] += 1
        return 500, soap.fault_response(req.message_id if req else "", fault, self.spec.name.lower())

    def handle_soap(self, body: bytes, user: str, client_ip: str) -> tuple[int, bytes] | _Later:
        """The status and envelope answering a SOAP request, or the wait before they are known."""
        try:
            req = soap.parse_request(body)
        except soap.BadRequest as exc:
            self.counters.by_action["(malformed)"] += 1
            return self._fault(None, wsman_faults.invalid_request(str(exc)))
        self.counters.by_action[req.action.rsplit("/", 1)[-1]] += 1
        if req.action == soap.ACTION_CREATE:
            return self._create(req, user, client_ip)
        if req.action not in (
            soap.ACTION_COMMAND,
            soap.ACTION_SEND,
            soap.ACTION_RECEIVE,
            soap.ACTION_SIGNAL,
            soap.ACTION_DELETE,
        ):
            return self._fault(req, wsman_faults.action_not_supported(req.action))
        shell = self.shells.get(req.shell_id)
        if shell is None:
            return self._fault(req, wsman_faults.unknown_shell(req.shell_id or ""))
        if req.action == soap.ACTION_DELETE:
            self.shells.delete(shell.id)
            return 200, soap.delete_response(req)
        if req.action == soap.ACTION_COMMAND:
            return self._command(req, shell)
        node = req.body_child(_COMMAND_NODE[req.action])
        command_id = (node.attrib.get("CommandId") if node is not None else None) or ""
        command = shell.commands.get(command_id)
        if command is None:
            return self._fault(req, wsman_faults.unknown_command(command_id))
        if req.action == soap.ACTION_SIGNAL:
            code = req.body_child(soap.RSP_CODE)
            if code is not None and code.text.strip() in _TERMINATE_SIGNALS:
                self.shells.signal(shell, command_id)
            return 200, soap.signal_response(req)
        if req.action == soap.ACTION_SEND:
            assert node is not None
            command.stdin += base64_decode(node.text)
            if (node.attrib.get("End") or "").lower() == "true":
                self.shells.run_host(shell, command)
            return 200, soap.send_response(req)
        return self._receive(req, shell, command)

    def _create(self, req: soap.Request, user: str, client_ip: str) -> tuple[int, bytes]:
        try:
            codepage = int(req.options.get("WINRS_CODEPAGE", "437") or 437)
        except ValueError:
            codepage = 437
        env = {var.attrib.get("Name", ""): var.text for var in req.body_all(soap.RSP_VARIABLE)}
        shell = self.shells.create(user, codepage, env)
        if shell is None:
            return self._fault(req, wsman_faults.shell_quota(self.shells.max_shells))
        return 200, soap.create_response(
            req, shell.id, self.address, user, client_ip, min(self.shells.idle_timeout_s, 7200.0)
        )

    def _command(self, req: soap.Request, shell: Shell) -> tuple[int, bytes]:
        cmd_node = req.body_child(soap.RSP_COMMAND)
        command = cmd_node.text.strip() if cmd_node is not None else ""
        arguments = [arg.text for arg in req.body_all(soap.RSP_ARGUMENTS)]
        line = full_command_line(command, arguments)
        skip_cmd = req.options.get("WINRS_SKIP_CMD_SHELL", "FALSE").upper() == "TRUE"
        immediate = None
        if skip_cmd and len(line) > CREATE_PROCESS_LIMIT:
            return self._fault(req, wsman_faults.command_line_too_long())
        if not skip_cmd and len(line) > CMD_EXE_LIMIT:
            immediate = HostResult(b"", encode_console("The command line is too long.\n", shell.codepage), 1)
        decoded = decode(line) if immediate is None else decode("")
        started = self.shells.start(shell, decoded, immediate)
        if started.result is None and not decoded.script_from_stdin:
            early_starts().add(self.shells, shell, started)
        return 200, soap.command_response(req, started.id)

    def _receive(self, req: soap.Request, shell: Shell, command: Command) -> tuple[int, bytes] | _Later:
        """Output once the command is ready; w:TimedOut when OperationTimeout passes first."""
        self.shells.run_host(shell, command)
        clock = self.shells.clock
        wait = command.ready_at - clock() if math.isfinite(command.ready_at) else math.inf
        if wait > 0:
            return _Later(min(wait, req.operation_timeout_s), lambda: self._received(req, command))
        return self._output(req, command)

    def _received(self, req: soap.Request, command: Command) -> tuple[int, bytes]:
        if command.ready_at > self.shells.clock() + 0.001:
            return self._fault(req, wsman_faults.timed_out())
        return self._output(req, command)

    def _output(self, req: soap.Request, command: Command) -> tuple[int, bytes]:
        streams, exit_code = self.shells.take_output(command)
        return 200, soap.receive_response(req, command.id, streams, exit_code)


class Connection(asyncio.Protocol):
    """One client connection of a ``WireServer``.

    Requests are answered one at a time, as HTTP/1.1 without pipelining goes: a whole request is cut
    from the buffer, answered after the server's latency, and only then is the next one read; what
    arrives meanwhile waits in the buffer (reading pauses past ``READ_LIMIT`` twice over). At the end
    of the input, and on what is not HTTP we accept, the connection is aborted.
    """

    READ_LIMIT = 256 * 1024  # the longest request head

    def __init__(self, server: WireServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.head: tuple[int, str, str, dict[str, str], int] | None = None  # the parsed head, body start
        self.auth = ConnectionAuth()
        self.client_ip = "127.0.0.1"
        self.over_ssl = False
        self.busy = False  # a request is being answered
        self.eof = False
        self.hung = False
        self.paused = False
        self.timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connections.add(self)
        counters = self.server.counters
        counters.connections_open += 1
        counters.connections_total += 1
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.auth.cert_subject = _peer_common_name(transport)
        peer = transport.get_extra_info("peername")
        self.client_ip = peer[0] if peer else "127.0.0.1"
        self.over_ssl = transport.get_extra_info("sslcontext") is not None

    def data_received(self, data: bytes) -> None:
        if self.hung:
            return  # no answer: wait for the client to give up
        self.buffer += data
        if not self.paused and len(self.buffer) > 2 * self.READ_LIMIT and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        if not self.busy:
            self._next()

    def eof_received(self) -> bool:
        self.eof = True
        if self.hung:
            self.abort()
        elif not self.busy:
            self._next()
        return not self.over_ssl  # keep a TCP connection open to send the answer in progress

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        if exc is not None:
            self.buffer.clear()  # a broken connection: nothing more is read from it
            self.head = None
        if self in self.server.connections:
            self.server.connections.discard(self)
            self.server.counters.connections_open -= 1

    def abort(self) -> None:
        """Close at once; an answer still pending is dropped."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.transport is not None:
            self.transport.abort()

    # -- requests -----------------------------------------------------------------------------------
    def _take(self) -> HttpRequest | None:
        """The next whole request in the buffer, None until it has all arrived."""
        if self.head is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > self.READ_LIMIT:
                    raise ValueError("request head too long")
                return None
            if end > self.READ_LIMIT:
                raise ValueError("request head too long")
            self.head = (end + 4, *_parse_head(self.buffer[:end]))  # kept while the body arrives
        start, method, path, headers, length = self.head
        if len(self.buffer) < start + length:
            return None
        self.head = None
        body = bytes(self.buffer[start : start + length])
        del self.buffer[: start + length]
        if self.paused and len(self.buffer) <= self.READ_LIMIT and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return HttpRequest(method, path, headers, body)

    def _next(self) -> None:
        """Answer the next request if it has arrived; at the end of the input, close."""
        try:
            request = self._take()
        except ValueError:
            self.abort()
            return
        if request is None:
            if self.eof:
                self.abort()
            return
        self.busy = True
        counters = self.server.counters
        counters.requests += 1
        counters.bytes_in += len(request.body)
        latency = self.server.faults.latency_s
        if latency > 0:
            self.timer = asyncio.get_running_loop().call_later(latency, self._later, self._answer, request)
        else:
            self._answer(request)

    def _later(self, step: Callable[..., None], *args: Any) -> None:
        """A step run from a timer: if it fails the connection ends (as when a step run from
        ``data_received`` fails: asyncio reports the error and aborts the transport)."""
        try:
            step(*args)
        except BaseException:
            self.abort()
            raise

    def _done(self, keep_open: bool) -> None:
        """The answer is written: read the next request, or close."""
        self.busy = False
        if keep_open:
            self._next()
        else:
            self.abort()

    def _answer(self, request: HttpRequest) -> None:
        self.timer = None
        server, faults, conn = self.server, self.server.faults, self.auth
        close = request.headers.get("connection", "").lower() == "close"
        if faults.hang:
            server.counters.faults["hang"] += 1
            self.hung = True
            self.buffer.clear()
            self.head = None
            if self.eof:
                self.abort()
            elif self.paused and self.transport is not None:
                self.paused = False
                self.transport.resume_reading()
            return
        if faults.http_error:
            server.counters.faults["http-error"] += 1
            self._write(
                faults.http_error, _html_error(faults.http_error), "text/html; charset=us-ascii", close=close
            )
            self._done(not close)
            return
        if request.method != "POST" or request.path.lower().rstrip("/") != "/wsman":
            status = 405 if request.path.lower().rstrip("/") == "/wsman" else 404
            self._write(status, _html_error(status), "text/html; charset=us-ascii", close=close)
            self._done(not close)
            return
        verdict = server.authenticator.check(
            request.headers.get("authorization", ""), conn, refuse=faults.wrong_credentials
        )
        if verdict.user is None:
            server.counters.auth_failures += 1
            server.counters.by_status[401] += 1
            extra = tuple(("WWW-Authenticate", c) for c in verdict.challenge)
            if faults.wrong_credentials:
                server.counters.faults["wrong-credentials"] += 1
            self._write(401, b"", None, extra, close=close)
            self._done(not close)
            return
        content_type = request.headers.get("content-type", "")
        server.counters.content_types[content_type.split(";")[0].strip().lower()] += 1
        body, encrypted = request.body, content_type.lower().startswith("multipart/encrypted")
        if encrypted:
            try:
                body = decrypt_body(conn, body)
            except DecryptError:
                self._write(400, b"", None, close=True)
                self._done(False)
                return
            server.counters.encrypted_bodies += 1
        elif body:
            server.counters.plaintext_soap_bodies += 1
            auth = server.authenticator
            if auth.scheme == "ntlm" and not server.https and not auth.allow_unencrypted:
                self._write(401, b"", None, (("WWW-Authenticate", "Negotiate"),), close=close)
                self._done(not close)
                return
        if not body:  # the empty POST that primes NTLM message encryption
            self._write(200, b"", None, close=close)
            self._done(not close)
            return
        answer = server.handle_soap(body, verdict.user, self.client_ip)
        if isinstance(answer, _Later):
            later = answer
            self.timer = asyncio.get_running_loop().call_later(
                later.delay, self._later, lambda: self._soap_answer(later.answer(), encrypted, close)
            )
        else:
            self._soap_answer(answer, encrypted, close)

    def _soap_answer(self, answer: tuple[int, bytes], encrypted: bool, close: bool) -> None:
        self.timer = None
        status, payload = answer
        content = SOAP_CONTENT_TYPE
        if encrypted:
            payload, content = encrypt_body(self.auth, payload), ENCRYPTED_CONTENT_TYPE
        if self.server.faults.reset:
            assert self.transport is not None
            self.server.counters.faults["reset"] += 1
            self.transport.write(_response_head(status, len(payload), content) + payload[: len(payload) // 2])
            with contextlib.suppress(OSError, AttributeError):
                self.transport.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            asyncio.get_running_loop().call_soon(self.abort)  # the connection ends: nothing more is read
            return
        self._write(status, payload, content, close=close)
        self._done(not close)

    def _write(
        self,
        status: int,
        body: bytes,
        content_type: str | None,
        extra: tuple[tuple[str, str], ...] = (),
        close: bool = False,
    ) -> None:
        counters = self.server.counters
        if status != 401:
            counters.by_status[status] += 1
        data = _response_head(status, len(body), content_type, extra, close) + body
        counters.bytes_out += len(data)
        assert self.transport is not None
        self.transport.write(data)


def _peer_common_name(transport: asyncio.BaseTransport) -> str | None:
    """The subject CN of the client certificate the TLS handshake verified (None without one)."""
    cert = transport.get_extra_info("peercert")
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def base64_decode(text: str) -> bytes:
    """Stdin as sent; a client's bad base64 counts as no input rather than a crash."""
    try:
        return base64.b64decode(text.strip())
    except (binascii.Error, ValueError):
        return b""
