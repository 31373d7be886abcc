"""What it takes to reach one server, built from its ``ServerConfig`` and its password.

Kept apart from ``session.py`` so that the console, which hands these settings to its WinRM worker
process (``process.py``), never imports pywinrm or requests itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from emconsole.backends.base import BackendFailure

from emconsole.models import FailureKind, ServerFailure

if TYPE_CHECKING:
    from emconsole.config import ServerConfig
    from emconsole.credentials import PasswordSource


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything needed to reach one server (built from its ``ServerConfig``)."""

    name: str
    host: str
    port: int
    scheme: str = "http"
    transport: str = "basic"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    cert_pem: str | None = None
    cert_key_pem: str | None = None
    verify_tls: bool = True
    ca_bundle: str | None = None
    proxy: str | None = None
    kerberos_delegation: bool = False
    connect_timeout_s: float = 5.0
    receive_poll_s: int = 5  # longest a single Receive may wait on the server (WS-Man OperationTimeout)

    @property
    def endpoint(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}/wsman"



#: Returns the password for a server (resolved from its ``password_from``), or None.
PasswordLookup = Callable[["ServerConfig"], "str | None"]


def settings_from_config(server: ServerConfig, password: str | None) -> ConnectionSettings:
    """The one place that reads connection fields from the config."""
    from emconsole.config import PROXY_FROM_ENVIRONMENT  # here: the worker process never reads a config

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


def session_settings(server: ServerConfig, password_lookup: PasswordLookup) -> ConnectionSettings:
    """The server's settings with its password; a lookup failure is an AUTH ``BackendFailure``."""
    try:
        password = password_lookup(server)
    except Exception as exc:  # CredentialError and friends: their message never holds the secret
        raise BackendFailure(ServerFailure(kind=FailureKind.AUTH,
                                           message=f"no password for {server.name}: {exc}")) from None
    return settings_from_config(server, password)


