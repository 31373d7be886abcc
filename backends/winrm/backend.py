"""The WinRM backend: one ``ServerSession`` per server, a small cleanup pool, failures classified.

Why a separate cleanup pool: Signal (ending a finished command) is off the critical path, so it
must not occupy one of the engine's refresh slots; it runs here, holding only that server's lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from emconsole.backends.base import BackendFailure, RawResult
from emconsole.backends.winrm.errors import classify_powershell_error
from emconsole.backends.winrm.session import ConnectionSettings, ServerSession

from emconsole.config import PROXY_FROM_ENVIRONMENT
from emconsole.models import FailureKind, ServerFailure

if TYPE_CHECKING:
    from emconsole.config import ServerConfig
    from emconsole.credentials import PasswordSource
    from emconsole.remote.scripts import RemoteScript

#: Returns the password for a server (resolved from its ``password_from``), or None.
PasswordLookup = Callable[["ServerConfig"], "str | None"]


def settings_from_config(server: ServerConfig, password: str | None) -> ConnectionSettings:
    """The one place that reads connection fields from the config."""
    return ConnectionSettings(
        name=server.name,
        host=server.host,
        port=server.port,
        scheme=server.scheme.value,
        transport=server.transport.value,
        username=server.username,
        password=password,
        cert_pem=str(server.cert_pem) if server.cert_pem else None,
        cert_key_pem=str(server.cert_key_pem) if server.cert_key_pem else None,
        verify_tls=server.tls_verify,
        ca_bundle=str(server.ca_bundle) if server.ca_bundle else None,
        # None = no proxy at all (pywinrm's default would follow HTTP(S)_PROXY silently)
        proxy="legacy_requests" if server.proxy == PROXY_FROM_ENVIRONMENT else server.proxy,
        # Kerberos only reaches AD from the session when the ticket may be delegated.
        kerberos_delegation=True,
    )


def password_lookup(source: PasswordSource) -> PasswordLookup:
    """A lookup resolving each server's ``password_from`` through ``source`` (cached there)."""

    def lookup(server: ServerConfig) -> str | None:
        if server.password_from is None or server.username is None:
            return None
        return source.password(server.password_from, server.username, server.name)

    return lookup


class WinRMBackend:
    """Runs remote scripts over WinRM; see ``emconsole.backends.base.Backend``."""

    def __init__(self, password_lookup: PasswordLookup, *, cleanup_workers: int = 8) -> None:
        self._password_lookup = password_lookup
        self._sessions: dict[str, ServerSession] = {}
        self._mutex = threading.Lock()
        self._cleanup = ThreadPoolExecutor(max_workers=cleanup_workers, thread_name_prefix="winrm-cleanup")

    def _session(self, server: ServerConfig) -> ServerSession:
        with self._mutex:
            session = self._sessions.get(server.name)
        if session is not None:
            return session
        try:
            password = self._password_lookup(server)
        except Exception as exc:  # CredentialError and friends: their message never holds the secret
            raise BackendFailure(ServerFailure(kind=FailureKind.AUTH,
                                               message=f"no password for {server.name}: {exc}")) from None
        settings = settings_from_config(server, password)
        with self._mutex:
            return self._sessions.setdefault(server.name, ServerSession(settings, self._cleanup))

    def run(self, server: ServerConfig, script: RemoteScript, deadline_s: float,
            cancel: threading.Event | None = None) -> RawResult:
        """Run the script; a non-zero exit with an error becomes a classified ``BackendFailure``."""
        result = self._session(server).run(script.encoded_arguments(), deadline_s, cancel)
        if result.exit_code != 0 and (result.stderr.strip() or not result.stdout.strip()):
            raise BackendFailure(classify_powershell_error(result.stderr, result.stdout),
                                 duration_s=result.duration_s, round_trips=result.round_trips,
                                 stdout=result.stdout, stderr=result.stderr, exit_code=result.exit_code)
        return result

    def close(self) -> None:
        with self._mutex:
            sessions, self._sessions = list(self._sessions.values()), {}
        self._cleanup.shutdown(wait=True)
        for session in sessions:
            session.close()
