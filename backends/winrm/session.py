"""One server's WinRM connection: one pywinrm ``Protocol`` (one HTTP session) and one reused shell.

Why this exists rather than ``winrm.Session.run_ps``: ``run_ps`` costs five round trips (Create,
Command, Receive, Signal, Delete) and has no overall deadline. Here the shell stays open across
calls, so a warm call costs two round trips on the critical path (Command, Receive); the result is
handed back first and the Signal is sent afterwards on a cleanup thread that still holds this
server's lock, so it always completes before the next command on the shell. The Receive loop is
driven here with a deadline: each Receive asks the server to wait at most the time left, and the
HTTP read timeout is cut to the time left as well.
"""

from __future__ import annotations

import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

import requests
from emconsole.backends.base import BackendFailure, RawResult
from emconsole.backends.winrm.errors import FAULT_INVALID_SELECTORS, map_exception, timeout_failure
from emconsole.backends.winrm.settings import ConnectionSettings
from emconsole.backends.winrm.wsman import WSManProtocol
from winrm.exceptions import WinRMOperationTimeoutError, WSManFaultError

from emconsole.models import FailureKind, ServerFailure

UTF8_CODEPAGE = 65001
CLEANUP_TIMEOUT_S = 5.0


class _CountingProtocol(WSManProtocol):
    """pywinrm's Protocol (messages by ``WSManProtocol``), counting requests and bytes (round trips per
    call, for the command log)."""

    requests_sent = 0
    bytes_sent = 0
    bytes_received = 0

    def send_message(self, message: str) -> bytes:
        self.requests_sent += 1
        self.bytes_sent += len(message)
        if self.transport.proxy is None:
            # pywinrm names no proxy ("no_proxy": "*"), yet requests read the proxy variables again
            # on every request (~0.3 ms of CPU, a tenth of a request) and ~/.netrc for a request
            # without auth (certificate): with no proxy wanted, the environment is not read at all.
            self.transport.build_session().trust_env = False
        answer = super().send_message(message)
        self.bytes_received += len(answer)
        return answer


def clean_clixml(data: bytes) -> str:
    """Decode stderr; PowerShell serialises error records as CLIXML when stderr is redirected."""
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    if not text.startswith("#< CLIXML"):
        return text
    body = text.split("\n", 1)[1] if "\n" in text else ""
    try:
        root = ET.fromstring(re.sub(r'\sxmlns="[^"]*"', "", body, count=1))
    except ET.ParseError:
        return text
    parts = [s.text or "" for s in root.iter("S") if s.get("S") == "Error"]
    if not parts:
        return text
    return "".join(parts).replace("_x000D__x000A_", "\n").replace("_x000A_", "\n").strip()


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace").lstrip("\ufeff")


class ServerSession:
    """Serialises every call on one server (one lock) and keeps its shell warm between calls."""

    def __init__(self, settings: ConnectionSettings, cleanup_pool: Executor,
                 protocol_factory: Callable[[ConnectionSettings], _CountingProtocol] | None = None) -> None:
        self.settings = settings
        self._cleanup_pool = cleanup_pool
        self._factory = protocol_factory or make_protocol
        self._lock = threading.Lock()
        self._protocol: _CountingProtocol | None = None
        self._shell_id: str | None = None

    # ------------------------------------------------------------------ timeouts
    def _arm(self, proto: _CountingProtocol, deadline: float, *, receive: bool) -> None:
        """Fit the next request into the time left: server-side wait and HTTP timeouts."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise _DeadlineReached()
        poll = max(1, min(self.settings.receive_poll_s, int(left)))
        proto.operation_timeout_sec = poll
        read = min(left, poll + 2.0) if receive else min(left, poll + 10.0)
        timeout: Any = (min(self.settings.connect_timeout_s, left), read)
        proto.transport.read_timeout_sec = timeout

    # ------------------------------------------------------------------ the call
    def run(self, args: Sequence[str], deadline_s: float, cancel: threading.Event | None = None) -> RawResult:
        """Run ``powershell.exe <args>`` (no cmd.exe) and return once the command is done."""
        start = time.monotonic()
        deadline = start + deadline_s
        s = self.settings
        if not self._lock.acquire(timeout=max(0.0, deadline_s)):
            raise BackendFailure(timeout_failure(s.host, s.port, "wait for the previous command's cleanup",
                                                 time.monotonic() - start), duration_s=deadline_s)
        phase = "connect"
        proto: _CountingProtocol | None = None
        shell_id: str | None = None
        command_id: str | None = None
        req0 = sent0 = recv0 = 0
        opened = False
        out: list[bytes] = []
        err: list[bytes] = []
        try:
            proto = self._protocol or self._factory(s)
            self._protocol = proto
            req0, sent0, recv0 = proto.requests_sent, proto.bytes_sent, proto.bytes_received
            if self._shell_id is None:
                phase = "shell"
                self._arm(proto, deadline, receive=False)
                self._shell_id = proto.open_shell(codepage=UTF8_CODEPAGE, noprofile=True)
                opened = True
            shell_id = self._shell_id
            phase = "command"
            self._arm(proto, deadline, receive=False)
            try:
                command_id = proto.run_command(shell_id, "powershell.exe", list(args), skip_cmd_shell=True)
            except WSManFaultError as exc:
                if exc.wsman_fault_code != FAULT_INVALID_SELECTORS or opened:
                    raise
                # The server forgot the shell (expired, WinRM restarted): a new one, same HTTP session.
                self._discard_shell(proto, deadline)
                phase = "shell"
                self._arm(proto, deadline, receive=False)
                shell_id = self._shell_id = proto.open_shell(codepage=UTF8_CODEPAGE, noprofile=True)
                opened = True
                phase = "command"
                self._arm(proto, deadline, receive=False)
                command_id = proto.run_command(shell_id, "powershell.exe", list(args), skip_cmd_shell=True)
            phase = "receive"
            exit_code = -1
            done = False
            while not done:
                if cancel is not None and cancel.is_set():
                    raise _Cancelled()
                self._arm(proto, deadline, receive=True)
                try:
                    stdout, stderr, exit_code, done = proto.get_command_output_raw(shell_id, command_id)
                except WinRMOperationTimeoutError:
                    continue
                out.append(stdout)
                err.append(stderr)
            return RawResult(
                stdout=_decode(b"".join(out)),
                stderr=clean_clixml(b"".join(err)),
                exit_code=exit_code,
                duration_s=time.monotonic() - start,
                round_trips=proto.requests_sent - req0,
                bytes_sent=proto.bytes_sent - sent0,
                bytes_received=proto.bytes_received - recv0,
                shell_opened=opened,
            )
        except BaseException as exc:
            elapsed = time.monotonic() - start
            sent = phase in ("command", "receive")  # the Command request left: the script may be running
            if isinstance(exc, requests.exceptions.ConnectionError) and not isinstance(
                    exc, requests.exceptions.ReadTimeout):
                phase = "connect"  # ConnectTimeout, refused, DNS: nothing reached the server
            if isinstance(exc, _DeadlineReached):
                failure = timeout_failure(s.host, s.port, phase, elapsed, f"deadline {deadline_s:.1f} s")
            elif isinstance(exc, _Cancelled):
                failure = ServerFailure(kind=FailureKind.TIMEOUT,
                                        message=f"cancelled after {elapsed:.1f} s in the {phase} phase")
            else:
                failure = map_exception(exc, host=s.host, port=s.port, phase=phase, elapsed_s=elapsed)
            if proto is not None and command_id is None and phase in ("command", "shell"):
                # A request died mid-flight: the shell's state on the server is unknown.
                command_id = ""
            rt = proto.requests_sent - req0 if proto is not None else 0
            raise BackendFailure(failure, duration_s=elapsed, round_trips=rt, stdout=_decode(b"".join(out)),
                                 stderr=clean_clixml(b"".join(err)), may_have_run=sent) from None
        finally:
            self._hand_off_cleanup(proto, shell_id, command_id)

    # ------------------------------------------------------------------ cleanup
    def _hand_off_cleanup(self, proto: _CountingProtocol | None, shell_id: str | None,
                          command_id: str | None) -> None:
        """Signal the command off the caller's path; the lock is released only once that is done."""
        if proto is None or shell_id is None or command_id is None:
            self._lock.release()
            return
        try:
            self._cleanup_pool.submit(self._cleanup, proto, shell_id, command_id)
        except RuntimeError:  # pool shut down (closing): clean up here instead
            self._cleanup(proto, shell_id, command_id)

    def _cleanup(self, proto: _CountingProtocol, shell_id: str, command_id: str) -> None:
        try:
            deadline = time.monotonic() + CLEANUP_TIMEOUT_S
            try:
                if command_id:
                    self._arm(proto, deadline, receive=False)
                    proto.cleanup_command(shell_id, command_id)
                    return
            except Exception:  # fall through: get rid of the shell instead
                pass
            self._discard_shell(proto, deadline)
        finally:
            self._lock.release()

    def _discard_shell(self, proto: _CountingProtocol, deadline: float) -> None:
        """Delete the shell (keeping the HTTP session); if even that fails, drop the session too."""
        shell_id, self._shell_id = self._shell_id, None
        if shell_id is None:
            return
        try:
            self._arm(proto, deadline, receive=False)
            proto.close_shell(shell_id, close_session=False)
        except WSManFaultError:
            pass  # the server answered (the shell is already gone): the HTTP session is fine
        except Exception:
            proto.transport.close_session()

    def close(self, timeout_s: float = CLEANUP_TIMEOUT_S) -> None:
        """Delete the shell and close the HTTP session (waits for a pending cleanup first)."""
        if not self._lock.acquire(timeout=timeout_s):
            return
        try:
            proto, self._protocol = self._protocol, None
            if proto is None:
                return
            if self._shell_id is not None:
                self._discard_shell(proto, time.monotonic() + timeout_s)
            proto.transport.close_session()
        finally:
            self._lock.release()


class _DeadlineReached(Exception):
    pass


class _Cancelled(Exception):
    pass


def make_protocol(s: ConnectionSettings) -> _CountingProtocol:
    """A pywinrm Protocol for these settings (no I/O happens until the first request)."""
    kwargs: dict[str, Any] = {
        "endpoint": s.endpoint,
        "username": s.username,
        "password": s.password,
        "server_cert_validation": "validate" if s.verify_tls else "ignore",
        "ca_trust_path": s.ca_bundle if s.ca_bundle else None,
        "proxy": s.proxy,
        "read_timeout_sec": s.receive_poll_s + 10,
        "operation_timeout_sec": s.receive_poll_s,
    }
    transport = s.transport
    if transport == "basic":
        kwargs["transport"] = "basic"
    elif transport == "ntlm":
        kwargs["transport"] = "ntlm"
        kwargs["message_encryption"] = "auto"  # encrypts every message over plain HTTP
    elif transport == "kerberos":
        _require_extra("kerberos", "HAVE_KERBEROS", "pywinrm[kerberos] (and the system's Kerberos libraries)")
        kwargs["transport"] = "kerberos"
        kwargs["kerberos_delegation"] = s.kerberos_delegation
    elif transport == "credssp":
        _require_extra("credssp", "HAVE_CREDSSP", "pywinrm[credssp]")
        kwargs["transport"] = "credssp"
    elif transport == "certificate":
        kwargs["transport"] = "certificate"
        kwargs["cert_pem"] = s.cert_pem
        kwargs["cert_key_pem"] = s.cert_key_pem
        kwargs["username"] = kwargs["password"] = None
    else:
        raise BackendFailure(ServerFailure(kind=FailureKind.INVALID_INPUT,
                                           message=f"unknown transport {transport!r} for {s.name}"))
    try:
        return _CountingProtocol(**kwargs)
    except Exception as exc:  # pywinrm validates options (cert files, user name) at construction
        kind = FailureKind.AUTH if "cert" in str(exc) or "username" in str(exc) else FailureKind.INVALID_INPUT
        message = f"cannot set up {transport} for {s.name}: {exc}"
        raise BackendFailure(ServerFailure(kind=kind, message=message)) from None


def _require_extra(name: str, flag: str, what: str) -> None:
    from winrm import transport as wt

    if not getattr(wt, flag, False):
        raise BackendFailure(ServerFailure(
            kind=FailureKind.INVALID_INPUT,
            message=f"the {name} transport needs the '{name}' extra, which is not installed: "
                    f"pip install 'emconsole[{name}]' ({what})"))
