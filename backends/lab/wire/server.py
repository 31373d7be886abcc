"""One lab server: an HTTP/1.1 endpoint at ``/wsman`` on its own port, served by the shared event loop.

HTTP is read by hand (a few headers and a Content-Length body: all WinRM clients send) so that one
thread can serve hundreds of ports with keep-alive. Transport faults are applied here, in the order
a real stack meets them: latency, hang, HTTP.sys-level 5xx, authentication, then SOAP.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import math
import socket
import ssl
import struct
from dataclasses import dataclass

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
from emconsole.backends.lab.wire.shells import Command, Shell, ShellTable

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


async def _read_request(reader: asyncio.StreamReader) -> HttpRequest | None:
    """The next request on the connection, None at EOF; ValueError for what is not HTTP/1.1 we accept."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise ValueError("truncated request head") from exc
        return None
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
    body = await reader.readexactly(length) if length else b""
    return HttpRequest(parts[0], parts[1], headers, body)


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
        self.tasks: set[asyncio.Task[None]] = set()
        self.writers: set[asyncio.StreamWriter] = set()
        self.address = f"{'https' if https else 'http'}://127.0.0.1:{spec.port}/wsman"

    # -- connection --------------------------------------------------------------------------------
    async def handle_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        self.writers.add(writer)
        self.counters.connections_open += 1
        self.counters.connections_total += 1
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = ConnectionAuth(cert_subject=_peer_common_name(writer))
        try:
            while await self._serve_one(reader, writer, conn):
                pass
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, ValueError, OSError):
            pass
        except asyncio.CancelledError:
            pass  # the lab is stopping: end quietly (asyncio's stream callback would report a cancelled task)
        finally:
            self.counters.connections_open -= 1
            self.writers.discard(writer)
            writer.transport.abort()
            if task is not None:
                self.tasks.discard(task)

    async def _serve_one(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnectionAuth
    ) -> bool:
        """Answer one request; False when the connection is to end."""
        request = await _read_request(reader)
        if request is None:
            return False
        self.counters.requests += 1
        self.counters.bytes_in += len(request.body)
        close = request.headers.get("connection", "").lower() == "close"
        if self.faults.latency_s > 0:
            await asyncio.sleep(self.faults.latency_s)
        if self.faults.hang:
            self.counters.faults["hang"] += 1
            while await reader.read(65536):  # no answer: wait for the client to give up
                pass
            return False
        if self.faults.http_error:
            self.counters.faults["http-error"] += 1
            self._write(
                writer,
                self.faults.http_error,
                _html_error(self.faults.http_error),
                "text/html; charset=us-ascii",
                close=close,
            )
            return not close
        if request.method != "POST" or request.path.lower().rstrip("/") != "/wsman":
            status = 405 if request.path.lower().rstrip("/") == "/wsman" else 404
            self._write(writer, status, _html_error(status), "text/html; charset=us-ascii", close=close)
            return not close
        verdict = self.authenticator.check(
            request.headers.get("authorization", ""), conn, refuse=self.faults.wrong_credentials
        )
        if verdict.user is None:
            self.counters.auth_failures += 1
            self.counters.by_status[401] += 1
            extra = tuple(("WWW-Authenticate", c) for c in verdict.challenge)
            if self.faults.wrong_credentials:
                self.counters.faults["wrong-credentials"] += 1
            self._write(writer, 401, b"", None, extra, close=close)
            return not close
        content_type = request.headers.get("content-type", "")
        self.counters.content_types[content_type.split(";")[0].strip().lower()] += 1
        body, encrypted = request.body, content_type.lower().startswith("multipart/encrypted")
        if encrypted:
            try:
                body = decrypt_body(conn, body)
            except DecryptError:
                self._write(writer, 400, b"", None, close=True)
                return False
            self.counters.encrypted_bodies += 1
        elif body:
            self.counters.plaintext_soap_bodies += 1
            if (
                self.authenticator.scheme == "ntlm"
                and not self.https
                and not self.authenticator.allow_unencrypted
            ):
                self._write(writer, 401, b"", None, (("WWW-Authenticate", "Negotiate"),), close=close)
                return not close
        if not body:  # the empty POST that primes NTLM message encryption
            self._write(writer, 200, b"", None, close=close)
            return not close
        status, payload = await self._soap(body, verdict.user, writer)
        content = SOAP_CONTENT_TYPE
        if encrypted:
            payload, content = encrypt_body(conn, payload), ENCRYPTED_CONTENT_TYPE
        if self.faults.reset:
            self.counters.faults["reset"] += 1
            writer.write(_response_head(status, len(payload), content) + payload[: len(payload) // 2])
            with contextlib.suppress(OSError, AttributeError):
                writer.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            await asyncio.sleep(0)
            writer.transport.abort()
            return False
        self._write(writer, status, payload, content, close=close)
        return not close

    def _write(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        content_type: str | None,
        extra: tuple[tuple[str, str], ...] = (),
        close: bool = False,
    ) -> None:
        if status != 401:
            self.counters.by_status[status] += 1
        data = _response_head(status, len(body), content_type, extra, close) + body
        self.counters.bytes_out += len(data)
        writer.write(data)

    # -- SOAP ----------------------------------------------------------------------------------------
    def _fault(self, req: soap.Request | None, fault: soap.Fault) -> tuple[int, bytes]:
        self.counters.faults[fault.subcode.split(":")[-1]] += 1
        return 500, soap.fault_response(req.message_id if req else "", fault, self.spec.name.lower())

    async def _soap(self, body: bytes, user: str, writer: asyncio.StreamWriter) -> tuple[int, bytes]:
        try:
            req = soap.parse_request(body)
        except soap.BadRequest as exc:
            self.counters.by_action["(malformed)"] += 1
            return self._fault(None, wsman_faults.invalid_request(str(exc)))
        self.counters.by_action[req.action.rsplit("/", 1)[-1]] += 1
        if req.action == soap.ACTION_CREATE:
            return self._create(req, user, writer)
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
                command.stdin_closed = True
                self.shells.run_host(shell, command)
            return 200, soap.send_response(req)
        return await self._receive(req, shell, command)

    def _create(self, req: soap.Request, user: str, writer: asyncio.StreamWriter) -> tuple[int, bytes]:
        try:
            codepage = int(req.options.get("WINRS_CODEPAGE", "437") or 437)
        except ValueError:
            codepage = 437
        env = {var.attrib.get("Name", ""): var.text for var in req.body_all(soap.RSP_VARIABLE)}
        shell = self.shells.create(user, codepage, env)
        if shell is None:
            return self._fault(req, wsman_faults.shell_quota(self.shells.max_shells))
        peer = writer.get_extra_info("peername")
        return 200, soap.create_response(
            req,
            shell.id,
            self.address,
            user,
            peer[0] if peer else "127.0.0.1",
            min(self.shells.idle_timeout_s, 7200.0),
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
        return 200, soap.command_response(req, started.id)

    async def _receive(self, req: soap.Request, shell: Shell, command: Command) -> tuple[int, bytes]:
        """Output once the command is ready; w:TimedOut when OperationTimeout passes first."""
        self.shells.run_host(shell, command)
        clock = self.shells.clock
        wait = command.ready_at - clock() if math.isfinite(command.ready_at) else math.inf
        if wait > 0:
            await asyncio.sleep(min(wait, req.operation_timeout_s))
            if command.ready_at > clock() + 0.001:
                return self._fault(req, wsman_faults.timed_out())
        streams, exit_code = self.shells.take_output(command)
        return 200, soap.receive_response(req, command.id, streams, exit_code)


def _peer_common_name(writer: asyncio.StreamWriter) -> str | None:
    """The subject CN of the client certificate the TLS handshake verified (None without one)."""
    cert = writer.get_extra_info("peercert")
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
