"""The WinRM backend: one ``ServerSession`` per server, a small cleanup pool, failures classified.

Why a separate cleanup pool: Signal (ending a finished command) is off the critical path, so it
must not occupy one of the engine's refresh slots; it runs here, holding only that server's lock.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from emconsole.backends.base import BackendFailure, RawResult
from emconsole.backends.winrm.errors import classify_powershell_error
from emconsole.backends.winrm.session import ServerSession
from emconsole.backends.winrm.settings import ConnectionSettings, PasswordLookup, session_settings

if TYPE_CHECKING:
    from emconsole.config import ServerConfig
    from emconsole.remote.scripts import RemoteScript


class SessionTable:
    """One ``ServerSession`` per server name, sharing one cleanup pool; closed together.

    Used by ``WinRMBackend`` in the caller's process and by the worker process (``worker.py``),
    which is handed each server's settings over its pipe instead of looking them up.
    """

    def __init__(self, *, cleanup_workers: int = 8) -> None:
        self._sessions: dict[str, ServerSession] = {}
        self._mutex = threading.Lock()
        self._cleanup = ThreadPoolExecutor(max_workers=cleanup_workers, thread_name_prefix="winrm-cleanup")

    def get(self, name: str) -> ServerSession | None:
        with self._mutex:
            return self._sessions.get(name)

    def add(self, settings: ConnectionSettings) -> ServerSession:
        """The session for ``settings.name`` (the first one added wins)."""
        with self._mutex:
            return self._sessions.setdefault(settings.name, ServerSession(settings, self._cleanup))

    def close(self) -> None:
        """Delete every shell (after its pending Signal) and close every HTTP session, several at a time."""
        with self._mutex:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:  # after its pending Signal, on the cleanup pool: servers in parallel
            self._cleanup.submit(session.close)
        self._cleanup.shutdown(wait=True)


def run_classified(session: ServerSession, args: list[str], deadline_s: float,
                   cancel: threading.Event | None) -> RawResult:
    """Run on ``session``; a non-zero exit with an error becomes a classified ``BackendFailure``."""
    result = session.run(args, deadline_s, cancel)
    if result.exit_code != 0 and (result.stderr.strip() or not result.stdout.strip()):
        raise BackendFailure(classify_powershell_error(result.stderr, result.stdout),
                             duration_s=result.duration_s, round_trips=result.round_trips,
                             stdout=result.stdout, stderr=result.stderr, exit_code=result.exit_code)
    return result


class WinRMBackend:
    """Runs remote scripts over WinRM on the caller's threads; see ``emconsole.backends.base.Backend``."""

    def __init__(self, password_lookup: PasswordLookup, *, cleanup_workers: int = 8) -> None:
        self._password_lookup = password_lookup
        self._sessions = SessionTable(cleanup_workers=cleanup_workers)

    def run(self, server: ServerConfig, script: RemoteScript, deadline_s: float,
            cancel: threading.Event | None = None) -> RawResult:
        session = self._sessions.get(server.name) or self._sessions.add(
            session_settings(server, self._password_lookup))
        return run_classified(session, script.encoded_arguments(), deadline_s, cancel)

    def close(self) -> None:
        self._sessions.close()
