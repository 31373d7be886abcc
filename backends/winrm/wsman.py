"""pywinrm's Protocol with its five shell messages built from constant text and its answers read once.

Why: on a warm refresh the console's own CPU per server is mostly pywinrm's, and it is spent on
bookkeeping rather than on the wire: each envelope was a nested dict serialised by
``xmltodict.unparse`` (~0.2 ms), each answer was searched with ``findall('.//*')`` up to three
times, and requests prepared every POST from scratch (~0.2-0.3 ms: URL parsing, header, cookie and
auth merging) although nothing in it but the body changes. The messages here are byte for byte
pywinrm's (the tests compare them, hostile values included): the same elements, headers and option
sets, ``OperationTimeout`` from ``operation_timeout_sec``, ``MaxEnvelopeSize`` and ``Locale`` as
pywinrm hard-codes them, values escaped as its XML generator escapes them; the answers are read
with the same rules and fail with the same exceptions. ``Protocol.send_message`` is pywinrm's
(faults become ``WSManFaultError``, the Receive timeout ``WinRMOperationTimeoutError``). What is left
is the HTTP stack: for Basic and certificate logons without encryption or proxy, ``PreparedTransport``
posts through urllib3 (requests' own pool and TLS settings) rather than through requests' per-request
machinery; NTLM, Kerberos, CredSSP, proxies and cookies keep pywinrm's Transport as it is.
"""

from __future__ import annotations

import base64
import collections.abc
import typing as t
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.auth import HTTPBasicAuth
from requests.cookies import extract_cookies_to_jar
from requests.models import CONTENT_CHUNK_SIZE
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import (
    ClosedPoolError,
    ConnectTimeoutError,
    DecodeError,
    LocationValueError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    ResponseError,
)
from winrm.exceptions import InvalidCredentialsError, WinRMTransportError
from winrm.protocol import Protocol
from winrm.transport import Transport

SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
_CREATE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
_DELETE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
_COMMAND = f"{SHELL}/Command"
_RECEIVE = f"{SHELL}/Receive"
_SIGNAL = f"{SHELL}/Signal"
_DONE = "CommandState/Done"

# pywinrm's build_wsman_header, in its order; MaxEnvelopeSize and Locale are constants there too.
_HEAD = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    'xmlns:b="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" '
    'xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration" '
    'xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" '
    'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
    'xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd" '
    f'xmlns:rsp="{SHELL}" '
    'xmlns:cfg="http://schemas.microsoft.com/wbem/wsman/1/config">'
    "<env:Header><a:To>http://windows-host:5985/wsman</a:To>"
    '<a:ReplyTo><a:Address mustUnderstand="true">'
    "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>"
    '<w:MaxEnvelopeSize mustUnderstand="true">153600</w:MaxEnvelopeSize>'
    "<a:MessageID>uuid:{message_id}</a:MessageID>"
    '<w:Locale mustUnderstand="false" xml:lang="en-US"></w:Locale>'
    '<p:DataLocale mustUnderstand="false" xml:lang="en-US"></p:DataLocale>'
    "<w:OperationTimeout>PT{timeout}S</w:OperationTimeout>"
    f'<w:ResourceURI mustUnderstand="true">{SHELL}/cmd</w:ResourceURI>'
    '<a:Action mustUnderstand="true">{action}</a:Action>'
)


def _bool(value: bool) -> str:
    return str(value).upper()


def _attr(value: str | None) -> str:
    """An attribute value as pywinrm's generator writes it (None becomes empty, quotes chosen alike)."""
    return quoteattr("" if value is None else value)


class WSManProtocol(Protocol):
    """``winrm.protocol.Protocol`` with the shell operations' envelopes and answers done directly."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        # The Transport pywinrm built, with its request preparation reused between messages.
        self.transport.__class__ = PreparedTransport

    def envelope(self, action: str, message_id: str, shell_id: str | None, header: str, body: str) -> str:
        """A whole message: pywinrm's header for ``action``, extra header elements, then the body."""
        head = _HEAD.format(message_id=message_id, timeout=int(self.operation_timeout_sec), action=action)
        if shell_id:
            head += f'<w:SelectorSet><w:Selector Name="ShellId">{escape(shell_id)}</w:Selector>' \
                    "</w:SelectorSet>"
        return f"{head}{header}</env:Header><env:Body>{body}</env:Body></env:Envelope>"

    def exchange(self, action: str, shell_id: str | None, header: str, body: str,
                 message_id: uuid.UUID | None = None) -> ET.Element:
        """Send one message through pywinrm's ``send_message`` (its fault exceptions), parse the answer."""
        message = self.envelope(action, str(message_id or uuid.uuid4()), shell_id, header, body)
        return ET.fromstring(self.send_message(message))

    def open_shell(self, i_stream: str = "stdin", o_stream: str = "stdout stderr",
                   working_directory: str | None = None, env_vars: dict[str, str] | None = None,
                   noprofile: bool = False, codepage: int = 437, lifetime: None = None,
                   idle_timeout: str | int | None = None) -> str:
        if working_directory or env_vars or idle_timeout:  # options the backend never uses: pywinrm's own
            return super().open_shell(i_stream, o_stream, working_directory, env_vars, noprofile, codepage,
                                      lifetime, idle_timeout)
        options = (f'<w:OptionSet><w:Option Name="WINRS_NOPROFILE">{_bool(noprofile)}</w:Option>'
                   f'<w:Option Name="WINRS_CODEPAGE">{escape(str(codepage))}</w:Option></w:OptionSet>')
        body = (f"<rsp:Shell><rsp:InputStreams>{escape(i_stream)}</rsp:InputStreams>"
                f"<rsp:OutputStreams>{escape(o_stream)}</rsp:OutputStreams></rsp:Shell>")
        root = self.exchange(_CREATE, None, options, body)
        return t.cast(str, _first(root, lambda node: node.get("Name") == "ShellId", "ShellId").text)

    def run_command(self, shell_id: str, command: str, arguments: collections.abc.Iterable[str | bytes] = (),
                    console_mode_stdin: bool = True, skip_cmd_shell: bool = False) -> str:
        options = (f'<w:OptionSet><w:Option Name="WINRS_CONSOLEMODE_STDIN">{_bool(console_mode_stdin)}'
                   f'</w:Option><w:Option Name="WINRS_SKIP_CMD_SHELL">{_bool(skip_cmd_shell)}</w:Option>'
                   "</w:OptionSet>")
        line = f"<rsp:Command>{escape(command)}</rsp:Command>"
        if arguments:
            joined = " ".join(a if isinstance(a, str) else a.decode("utf-8") for a in arguments)
            line += f"<rsp:Arguments>{escape(joined)}</rsp:Arguments>"
        body = f"<rsp:CommandLine>{line}</rsp:CommandLine>"
        root = self.exchange(_COMMAND, shell_id, options, body)
        return t.cast(str, _first(root, lambda node: node.tag.endswith("CommandId"), "CommandId").text)

    def get_command_output_raw(self, shell_id: str, command_id: str) -> tuple[bytes, bytes, int, bool]:
        body = (f"<rsp:Receive><rsp:DesiredStream CommandId={_attr(command_id)}>stdout stderr"
                "</rsp:DesiredStream></rsp:Receive>")
        root = self.exchange(_RECEIVE, shell_id, "", body)
        stdout: list[bytes] = []
        stderr: list[bytes] = []
        done = 0
        exit_code: ET.Element | None = None
        nodes = root.iter()
        next(nodes)  # pywinrm searches below the envelope (findall('.//*')), never the root itself
        for node in nodes:
            tag = node.tag
            if tag.endswith("Stream") and node.text:
                name = node.attrib["Name"]
                if name == "stdout":
                    stdout.append(base64.b64decode(node.text.encode("ascii")))
                elif name == "stderr":
                    stderr.append(base64.b64decode(node.text.encode("ascii")))
            elif exit_code is None and tag.endswith("ExitCode"):
                exit_code = node
            if node.get("State", "").endswith(_DONE):
                done += 1
        command_done = done == 1  # pywinrm's rule: exactly one Done state
        return_code = -1
        if command_done:
            if exit_code is None:
                raise StopIteration("no ExitCode in a Receive answer whose command is done")
            return_code = int(exit_code.text or -1)
        return b"".join(stdout), b"".join(stderr), return_code, command_done

    def cleanup_command(self, shell_id: str, command_id: str) -> None:
        message_id = uuid.uuid4()
        body = (f"<rsp:Signal CommandId={_attr(command_id)}>"
                f"<rsp:Code>{SHELL}/signal/terminate</rsp:Code></rsp:Signal>")
        _check_relates_to(self.exchange(_SIGNAL, shell_id, "", body, message_id), message_id)

    def close_shell(self, shell_id: str, close_session: bool = True) -> None:
        try:
            message_id = uuid.uuid4()
            answer = self.exchange(_DELETE, shell_id, "", "", message_id)
        finally:
            if close_session:  # as pywinrm: no pooled connection is left behind, even on failure
                self.transport.close_session()
        _check_relates_to(answer, message_id)


def _check_relates_to(root: ET.Element, message_id: uuid.UUID) -> None:
    """pywinrm's check that the answer is to this request (an AssertionError otherwise)."""
    relates_to = t.cast(str, _first(root, lambda node: node.tag.endswith("RelatesTo"), "RelatesTo").text)
    assert uuid.UUID(relates_to.replace("uuid:", "")) == message_id, "RelatesTo is not this request's"


def _first(root: ET.Element, match: t.Callable[[ET.Element], bool], what: str) -> ET.Element:
    """The first element below the root that matches, in document order, as pywinrm's ``next()``."""
    nodes = root.iter()
    next(nodes)
    for node in nodes:
        if match(node):
            return node
    raise StopIteration(f"no {what} in the answer")


class PreparedTransport(Transport):
    """pywinrm's Transport, posting through requests' own urllib3 pool when nothing per request is needed.

    For Basic or certificate logons without message encryption, no proxy, no cookie received, no hook
    and no environment read (``trust_env`` off), everything requests does around a POST but the
    socket work is the same every time: preparing it (URL, header, cookie and auth merging), finding
    the pool and building a ``Response``. The message goes to ``urlopen`` of the pool requests' adapter
    chose (its TLS settings: verification, CA bundle, client certificate), with requests' headers,
    retries and timeouts, and failures raised as requests' exception classes (``_LeanPost``). Anything
    else (NTLM, Kerberos, CredSSP, encrypted messages, a proxy, a cookie set by the server) goes
    through pywinrm's own path, unchanged.
    """

    _lean: _LeanPost | None = None

    def send_message(self, message: str | bytes) -> bytes:
        session = self.build_session()
        if not self._reusable(session):
            return super().send_message(message)
        lean = self._lean
        if lean is None or lean.session is not session:
            lean = self._lean = _LeanPost(session, self.endpoint)
        body = message.encode("utf-8") if isinstance(message, str) else message
        status, content = lean.post(body, t.cast(HTTPTimeout, self.read_timeout_sec))
        if 400 <= status < 600:  # pywinrm's _send_message_request, after requests' raise_for_status
            if status == 401:
                raise InvalidCredentialsError("the specified credentials were rejected by the server")
            raise WinRMTransportError("http", status, content.decode())
        return content

    def _reusable(self, session: requests.Session) -> bool:
        return (self.encryption is None and self.proxy is None and not session.trust_env
                and not session.cookies and (session.auth is None or type(session.auth) is HTTPBasicAuth)
                and not any(session.hooks.values()))


#: pywinrm's ``read_timeout_sec``: one timeout, (connect, read) as ``ServerSession._arm`` sets it, or none.
HTTPTimeout = float | tuple[float, float] | None


class _LeanPost:
    """One session's POST to the WS-Man endpoint, as ``Session.send`` and ``HTTPAdapter.send`` do it.

    The headers are those requests prepared once for this session (only Content-Length changes); the
    pool is the one the session's adapter picks for this endpoint and its TLS settings, looked up
    again once the adapter has closed it. Retries are the adapter's (none once bytes may have reached
    the server: a POST on a connection the server closed is never sent twice).
    """

    def __init__(self, session: requests.Session, endpoint: str) -> None:
        self.session = session
        self.request = session.prepare_request(requests.Request("POST", endpoint, data=b""))
        self.headers = dict(self.request.headers)
        self.adapter = t.cast(HTTPAdapter, session.get_adapter(endpoint))
        self.pool: HTTPConnectionPool | None = None

    def post(self, body: bytes, timeout: HTTPTimeout) -> tuple[int, bytes]:
        """Send one message; the answer's status and body, read (and decoded) as ``Response.content``."""
        session, adapter, request = self.session, self.adapter, self.request
        pool = self.pool
        if pool is None or pool.pool is None:  # first use, or closed by session.close() / pool eviction
            try:
                pool = self.pool = t.cast(HTTPConnectionPool, adapter.get_connection_with_tls_context(
                    request, session.verify, proxies=session.proxies, cert=session.cert))
            except LocationValueError as exc:
                raise requests.exceptions.InvalidURL(exc, request=request) from None
        adapter.cert_verify(pool, self.request.url or "", session.verify, session.cert)
        headers = self.headers.copy()
        headers["Content-Length"] = str(len(body))
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        try:
            raw = pool.urlopen("POST", request.path_url, body=body, headers=headers, redirect=False,
                               assert_same_host=False, preload_content=False, decode_content=False,
                               retries=adapter.max_retries, chunked=False,
                               timeout=urllib3.Timeout(connect=connect, read=read))
        except Exception as exc:
            mapped = _adapter_error(exc, request)
            if mapped is exc:
                raise
            raise mapped from exc
        if raw.get_redirect_location():
            return self._follow(raw, body, timeout)
        if "set-cookie" in raw.headers or "set-cookie2" in raw.headers:
            extract_cookies_to_jar(session.cookies, request, raw)
        return raw.status, _content(raw)

    def _follow(self, raw: urllib3.BaseHTTPResponse, body: bytes, timeout: HTTPTimeout) -> tuple[int, bytes]:
        """A redirect: the rest of ``Session.send`` (cookies kept, the redirect followed by requests)."""
        session = self.session
        request = self.request.copy()
        request.body = body
        request.headers["Content-Length"] = str(len(body))
        response = self.adapter.build_response(request, raw)
        extract_cookies_to_jar(session.cookies, request, raw)
        history = list(session.resolve_redirects(  # Session.send's arguments, as it passes them
            response, request, stream=False, timeout=timeout, verify=session.verify,  # type: ignore[arg-type]
            cert=session.cert, proxies=dict(session.proxies)))
        final = history[-1] if history else response
        return final.status_code, final.content


def _content(raw: urllib3.BaseHTTPResponse) -> bytes:
    """The whole body as ``Response.content`` reads it, failing with the same requests exceptions."""
    try:
        return b"".join(raw.stream(CONTENT_CHUNK_SIZE, decode_content=True))
    except ProtocolError as exc:
        raise requests.exceptions.ChunkedEncodingError(exc) from exc
    except DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from exc
    except ReadTimeoutError as exc:
        raise requests.exceptions.ConnectionError(exc) from exc
    except urllib3.exceptions.SSLError as exc:
        raise requests.exceptions.SSLError(exc) from exc


def _adapter_error(exc: Exception, request: requests.PreparedRequest) -> Exception:
    """What ``HTTPAdapter.send`` raises for an exception out of ``urlopen`` (its mapping, in its order)."""
    rx = requests.exceptions
    if isinstance(exc, (ProtocolError, OSError, ClosedPoolError)):
        return rx.ConnectionError(exc, request=request)
    if isinstance(exc, MaxRetryError):
        reason = exc.reason
        if isinstance(reason, ConnectTimeoutError) and not isinstance(reason, NewConnectionError):
            return rx.ConnectTimeout(exc, request=request)
        if isinstance(reason, ResponseError):
            return rx.RetryError(exc, request=request)
        if isinstance(reason, urllib3.exceptions.ProxyError):
            return rx.ProxyError(exc, request=request)
        if isinstance(reason, urllib3.exceptions.SSLError):
            return rx.SSLError(exc, request=request)
        return rx.ConnectionError(exc, request=request)
    if isinstance(exc, urllib3.exceptions.ProxyError):
        return rx.ProxyError(exc)
    if isinstance(exc, urllib3.exceptions.SSLError):
        return rx.SSLError(exc, request=request)
    if isinstance(exc, ReadTimeoutError):
        return rx.ReadTimeout(exc, request=request)
    if isinstance(exc, urllib3.exceptions.InvalidHeader):
        return rx.InvalidHeader(exc, request=request)
    return exc
