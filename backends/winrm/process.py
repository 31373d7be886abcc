"""The console's WinRM backend: the calls run in a worker process, the console only waits for answers.

Why: with the WinRM calls on the console's own threads, the event loop that answers keys shared
the GIL with 32 busy worker threads during a refresh (``bench/ui_load.py``). Here the engine's pool
threads only send a message and sleep until the answer comes; pywinrm runs in
``python -m emconsole.backends.winrm.worker`` (``worker.py``), which this module starts on ``start()``
or at the first call.

The contract is ``Backend``'s, unchanged: passwords are looked up here (``password_from``: keyring,
environment, the prompt already answered) and handed to the worker over the socket pair only
(``pipe.py``); deadlines and cancellation reach the worker's own calls; every failure arrives
classified. If the worker dies, the calls it held fail as "may have run" (the engine then reads the
server again before it reports a change) and the next call starts a new worker.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from emconsole.backends.base import BackendFailure, RawResult
from emconsole.backends.winrm.pipe import (
    MessagePipe,
    PipeClosed,
    outcome_from_message,
    settings_to_message,
)
from emconsole.backends.winrm.settings import PasswordLookup, session_settings

from emconsole.models import FailureKind, ServerFailure

if TYPE_CHECKING:
    from emconsole.config import ServerConfig
    from emconsole.remote.scripts import RemoteScript

#: How long past a call's own deadline the console waits for the worker's answer (the worker ends
#: every call by its deadline; this covers a worker that is stuck or starved of CPU).
REPLY_GRACE_S = 10.0
#: How often a waiting call looks at its cancel flag (the worker's call looks at its own between Receives).
CANCEL_POLL_S = 0.1
#: How long ``close`` lets the worker delete its shells before it is killed.
CLOSE_TIMEOUT_S = 15.0
#: A worker that reads nothing for this long (hung) is given up: its calls fail, the next starts anew.
SEND_TIMEOUT_S = 10.0
#: A worker that died sooner than this after it started is not started again at once.
RESTART_AFTER_S = 2.0
_STDERR_LINES = 20


@dataclass
class _Call:
    """One call waiting for its answer (set by the reader thread)."""

    answered: threading.Event = field(default_factory=threading.Event)
    outcome: RawResult | BackendFailure | None = None

    def answer(self, outcome: RawResult | BackendFailure) -> None:
        self.outcome = outcome
        self.answered.set()


class _WorkerProcess:
    """One worker process, its pipe, and the calls it holds."""

    def __init__(self, concurrency: int) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "emconsole.backends.winrm.worker", str(theirs.fileno()),
                 str(concurrency)],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE)
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        self.started = time.monotonic()
        self.pipe = MessagePipe(ours, send_timeout_s=SEND_TIMEOUT_S)
        self.opened: set[str] = set()
        self.mutex = threading.Lock()
        self._calls: dict[int, _Call] = {}
        self._ids = itertools.count(1)
        self.ended: str | None = None  # why the worker is gone, once it is
        self._over = threading.Event()  # set with ``ended``
        self._stderr: deque[str] = deque(maxlen=_STDERR_LINES)
        self._stderr_reader = threading.Thread(target=self._read_stderr, name="winrm-worker-stderr",
                                               daemon=True)
        self._stderr_reader.start()
        self._reader = threading.Thread(target=self._read_answers, name="winrm-worker-reader", daemon=True)
        self._reader.start()

    # ------------------------------------------------------------------ calls
    def open(self, settings_message: dict[str, object], name: str) -> None:
        with self.mutex:
            if name in self.opened:
                return
            with contextlib.suppress(PipeClosed):
                self.pipe.send(settings_message)
                self.opened.add(name)
                return
        raise _gone(self._why_gone(), may_have_run=False)

    def call(self, server: str, args: list[str], deadline_s: float,
             cancel: threading.Event | None) -> RawResult:
        start = time.monotonic()
        call = _Call()
        with self.mutex:
            if self.ended is not None:
                raise _gone(self.ended, may_have_run=False)
            call_id = next(self._ids)
            self._calls[call_id] = call
        try:
            self.pipe.send({"op": "run", "id": call_id, "server": server, "args": args,
                            "deadline_s": deadline_s})
        except PipeClosed:
            self._forget(call_id)
            raise _gone(self._why_gone(), may_have_run=False) from None
        give_up = start + deadline_s + REPLY_GRACE_S
        cancel_sent = False
        while not call.answered.wait(CANCEL_POLL_S if cancel is not None else give_up - time.monotonic()):
            if cancel is not None and cancel.is_set() and not cancel_sent:
                cancel_sent = True
                with contextlib.suppress(PipeClosed):  # once the pipe is gone the reader answers
                    self.pipe.send({"op": "cancel", "id": call_id})
            if time.monotonic() >= give_up:
                self._forget(call_id)
                waited = deadline_s + REPLY_GRACE_S
                message = f"no answer from the WinRM worker within {waited:.0f} s"
                raise BackendFailure(ServerFailure(kind=FailureKind.TIMEOUT, message=message),
                                     duration_s=time.monotonic() - start, may_have_run=True)
        outcome = call.outcome
        if isinstance(outcome, BackendFailure):
            raise outcome
        assert outcome is not None
        return outcome

    def _forget(self, call_id: int) -> None:
        with self.mutex:
            self._calls.pop(call_id, None)

    def _why_gone(self) -> str:
        """Once a send failed: the reason the reader thread finds (it sees the end a moment later)."""
        self._over.wait(2.0)
        return self.ended or "its pipe is closed"

    # ------------------------------------------------------------------ the reader threads
    def _read_answers(self) -> None:
        try:
            while True:
                message = self.pipe.receive()
                with self.mutex:
                    call = self._calls.pop(message.get("id", -1), None)
                if call is not None and message["op"] in ("done", "failed"):
                    call.answer(outcome_from_message(message))
        except PipeClosed:
            pass
        except (KeyError, TypeError, ValueError) as exc:  # a malformed answer: trust this worker no further
            self.pipe.shutdown()
            self._stderr.append(f"malformed answer: {exc!r}")
        self._end()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._stderr.append(line.decode("utf-8", errors="replace").rstrip())

    def _end(self) -> None:
        """The pipe is over: answer every waiting call with why, then wait for the process to go."""
        try:
            code: int | None = self.process.wait(timeout=1.0)  # a worker that died is gone already
        except subprocess.TimeoutExpired:
            code = None
        self._stderr_reader.join(timeout=0.5)
        last = next((line for line in reversed(self._stderr) if line.strip()), "")
        reason = ("its pipe closed" if code is None else f"it exited with code {code}") + (
            f": {last[:300]}" if last else "")
        with self.mutex:
            self.ended = reason
            calls, self._calls = list(self._calls.values()), {}
        self._over.set()
        for call in calls:
            call.answer(_gone(reason, may_have_run=True))
        self.pipe.close()
        try:
            self.process.wait(timeout=CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    # ------------------------------------------------------------------ the end
    def close(self) -> None:
        """Ask the worker to clean up and exit; wait for it (killed after ``CLOSE_TIMEOUT_S``)."""
        with contextlib.suppress(PipeClosed):
            self.pipe.send({"op": "close"})
        self._reader.join(timeout=CLOSE_TIMEOUT_S + 5.0)


def _gone(reason: str, *, may_have_run: bool) -> BackendFailure:
    failure = ServerFailure(kind=FailureKind.TIMEOUT, message=f"the WinRM worker process is gone: {reason}")
    return BackendFailure(failure, may_have_run=may_have_run)


class WorkerProcessBackend:
    """``Backend`` over a WinRM worker process (see the module docstring)."""

    def __init__(self, password_lookup: PasswordLookup, *, concurrency: int = 32) -> None:
        self._password_lookup = password_lookup
        self._concurrency = concurrency
        self._mutex = threading.Lock()
        self._worker: _WorkerProcess | None = None
        self._closed = False

    def _current(self) -> _WorkerProcess:
        with self._mutex:
            if self._closed:
                raise _gone("the backend is closed", may_have_run=False)
            worker = self._worker
            if worker is not None and worker.ended is not None:
                if time.monotonic() - worker.started < RESTART_AFTER_S:
                    raise _gone(worker.ended, may_have_run=False)
                worker = None
            if worker is None:
                try:
                    worker = self._worker = _WorkerProcess(self._concurrency)
                except OSError as exc:
                    raise _gone(f"it could not be started: {exc}", may_have_run=False) from None
            return worker

    def start(self) -> None:
        """Start the worker now rather than at the first call: it imports pywinrm (~0.5 s of CPU)
        while the console is still getting ready. A worker that cannot start is reported by the
        first call."""
        with contextlib.suppress(BackendFailure):
            self._current()

    def run(self, server: ServerConfig, script: RemoteScript, deadline_s: float,
            cancel: threading.Event | None = None) -> RawResult:
        worker = self._current()
        if server.name not in worker.opened:
            try:
                worker.open(settings_to_message(session_settings(server, self._password_lookup)), server.name)
            except PipeClosed:
                raise _gone("its pipe is closed", may_have_run=False) from None
        return worker.call(server.name, script.encoded_arguments(), deadline_s, cancel)

    @property
    def worker_pid(self) -> int | None:
        """The worker's process ID while one runs (for diagnostics and the benchmarks' CPU counts)."""
        worker = self._worker
        return worker.process.pid if worker is not None and worker.ended is None else None

    def close(self) -> None:
        with self._mutex:
            self._closed = True
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.close()
