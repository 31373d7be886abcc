"""The wire between the console and its WinRM worker process: length-prefixed JSON over a socket pair.

Why a socket pair: it belongs to the two processes alone, so a server's password crosses only this
pipe — never a file, a command-line argument or the environment. Why JSON rather than pickle:
reading a message never runs code, and every message is a plain dict whose ``op`` names it:

- console → worker: ``open`` (a server's ``ConnectionSettings``), ``run`` (call id, server name,
  powershell.exe arguments, deadline), ``cancel`` (call id), ``close``;
- worker → console: ``done`` (call id, ``RawResult``) or ``failed`` (call id, ``BackendFailure``).
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
from dataclasses import asdict
from typing import Any

from emconsole.backends.base import BackendFailure, RawResult
from emconsole.backends.winrm.settings import ConnectionSettings

from emconsole.models import ServerFailure

_HEADER = struct.Struct(">I")
#: Larger than any answer a call may produce; a longer frame means the stream is corrupt.
MAX_MESSAGE_BYTES = 512 * 1024 * 1024

Message = dict[str, Any]


class PipeClosed(Exception):
    """The other process closed its end, died, or wrote something that is not a message."""


class MessagePipe:
    """One end of the socket pair: ``send`` from any thread, ``receive`` from one reader thread.

    ``send_timeout_s``: a send that cannot finish in that time (the other side stopped reading)
    ends the stream rather than block its caller for ever.
    """

    def __init__(self, sock: socket.socket, send_timeout_s: float | None = None) -> None:
        if send_timeout_s is not None:
            seconds = int(send_timeout_s)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                            struct.pack("ll", seconds, int((send_timeout_s - seconds) * 1e6)))
        self._sock = sock
        self._reader = sock.makefile("rb")
        self._send_lock = threading.Lock()

    def send(self, message: Message) -> None:
        data = json.dumps(message, separators=(",", ":")).encode("utf-8")
        try:
            with self._send_lock:
                self._sock.sendall(_HEADER.pack(len(data)) + data)
        except OSError as exc:  # also a send timeout: part of a frame may have gone, the stream is over
            self.shutdown()
            raise PipeClosed(str(exc)) from None

    def receive(self) -> Message:
        try:
            header = self._reader.read(_HEADER.size)
            if len(header) < _HEADER.size:
                raise PipeClosed("end of stream")
            (size,) = _HEADER.unpack(header)
            if size > MAX_MESSAGE_BYTES:
                raise PipeClosed(f"a frame of {size} bytes")
            data = self._reader.read(size)
            if len(data) < size:
                raise PipeClosed("end of stream inside a message")
            message = json.loads(data)
        except (OSError, ValueError) as exc:
            raise PipeClosed(str(exc)) from None
        if not isinstance(message, dict) or not isinstance(message.get("op"), str):
            raise PipeClosed("a frame that is not a message")
        return message

    def shutdown(self) -> None:
        """End the stream both ways: the other side, and a reader blocked in ``receive``, see its end."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Release the socket (by the reader thread, once ``receive`` has returned for good)."""
        self._reader.close()
        self._sock.close()


# --------------------------------------------------------------------------- codecs
def settings_to_message(settings: ConnectionSettings) -> Message:
    return {"op": "open", "settings": asdict(settings)}


def settings_from_message(message: Message) -> ConnectionSettings:
    return ConnectionSettings(**message["settings"])


def result_to_message(call_id: int, result: RawResult) -> Message:
    return {"op": "done", "id": call_id, "result": asdict(result)}


def failure_to_message(call_id: int, failure: BackendFailure) -> Message:
    return {"op": "failed", "id": call_id, "failure": failure.failure.model_dump(mode="json"),
            "duration_s": failure.duration_s, "round_trips": failure.round_trips, "stdout": failure.stdout,
            "stderr": failure.stderr, "exit_code": failure.exit_code, "may_have_run": failure.may_have_run}


def outcome_from_message(message: Message) -> RawResult | BackendFailure:
    """A ``done`` or ``failed`` reply as the worker's call ended: a result, or the failure to raise."""
    if message["op"] == "done":
        return RawResult(**message["result"])
    return BackendFailure(ServerFailure.model_validate(message["failure"]), duration_s=message["duration_s"],
                          round_trips=message["round_trips"], stdout=message["stdout"],
                          stderr=message["stderr"], exit_code=message["exit_code"],
                          may_have_run=message["may_have_run"])
