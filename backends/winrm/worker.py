"""The WinRM worker process: runs the console's WinRM calls on its own threads, under its own GIL.

Why a process: pywinrm, requests and the XML work take the GIL on 32 threads during a refresh, and
the console's event loop (keys, frames) then waits for it. Here they take this process's GIL. The
console starts it (``process.WorkerProcessBackend``) as ``python -m emconsole.backends.winrm.worker
FD CONCURRENCY`` with one end of a socket pair as FD and speaks ``pipe`` messages over it.

When the console goes away (it quit, or it was killed) the pipe ends: every call in flight is
cancelled (it stops at its next poll, as the engine's own cancel does), every shell is deleted, and
the process exits; the console's audit log already says "outcome unknown" for a change it did not
see end.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from emconsole.backends.base import BackendFailure
from emconsole.backends.winrm.backend import SessionTable, run_classified
from emconsole.backends.winrm.pipe import (
    Message,
    MessagePipe,
    PipeClosed,
    failure_to_message,
    result_to_message,
    settings_from_message,
)

from emconsole.models import FailureKind, ServerFailure

#: Longest the worker spends deleting shells once the console has gone, before it exits anyway.
EXIT_CLEANUP_S = 30.0


class Worker:
    """Serves one pipe: each ``run`` on a pool thread, its reply sent as soon as it ends."""

    def __init__(self, pipe: MessagePipe, concurrency: int) -> None:
        self._pipe = pipe
        self._sessions = SessionTable()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="winrm")
        self._cancels: dict[int, threading.Event] = {}
        self._mutex = threading.Lock()

    def serve(self) -> None:
        """Until ``close`` or the end of the pipe; then cancel what still runs and clean up."""
        try:
            while True:
                message = self._pipe.receive()
                op = message["op"]
                if op == "close":
                    break
                if op == "open":
                    self._sessions.add(settings_from_message(message))
                elif op == "run":
                    self._start(message)
                elif op == "cancel":
                    self._cancel(message["id"])
        except PipeClosed:  # the console is gone
            pass
        _exit_after(EXIT_CLEANUP_S)
        with self._mutex:  # nobody waits for these answers any more
            for cancel in self._cancels.values():
                cancel.set()
        self._pool.shutdown(wait=True)
        self._sessions.close()

    def _cancel(self, call_id: int) -> None:
        with self._mutex:
            cancel = self._cancels.get(call_id)
        if cancel is not None:
            cancel.set()

    def _start(self, message: Message) -> None:
        call_id: int = message["id"]
        cancel = threading.Event()
        with self._mutex:
            self._cancels[call_id] = cancel
        self._pool.submit(self._run, call_id, message["server"], list(message["args"]),
                          float(message["deadline_s"]), cancel)

    def _run(self, call_id: int, server: str, args: list[str], deadline_s: float,
             cancel: threading.Event) -> None:
        try:
            session = self._sessions.get(server)
            if session is None:
                raise BackendFailure(ServerFailure(kind=FailureKind.INVALID_INPUT,
                                                   message=f"no connection settings for {server}"))
            reply = result_to_message(call_id, run_classified(session, args, deadline_s, cancel))
        except BackendFailure as exc:
            reply = failure_to_message(call_id, exc)
        except Exception as exc:  # a bug here must still answer the call, never leave it waiting
            reply = failure_to_message(call_id, BackendFailure(
                ServerFailure(kind=FailureKind.TIMEOUT, message=f"the WinRM worker failed: {exc!r}"),
                may_have_run=True))
        finally:
            with self._mutex:
                self._cancels.pop(call_id, None)
        with contextlib.suppress(PipeClosed):
            self._pipe.send(reply)


def _exit_after(seconds: float) -> None:
    """A watchdog: once the console has gone, a hung cleanup must not keep this process alive."""
    timer = threading.Timer(seconds, os._exit, args=(0,))
    timer.daemon = True
    timer.start()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m emconsole.backends.winrm.worker FD CONCURRENCY "
              "(started by the console, not by hand)", file=sys.stderr)
        return 2
    pipe = MessagePipe(socket.socket(fileno=int(args[0])))
    worker = Worker(pipe, max(1, int(args[1])))
    try:
        worker.serve()
    finally:
        pipe.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
