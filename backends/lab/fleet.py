"""A lab fleet: N WS-Management servers on ports ``first_port + i``, all served by one loop thread.

    fleet = LabFleet(LabSpec(servers=3, first_port=0), host_factory=lambda spec: MyHost(spec))
    with fleet:                      # start() ... stop()
        url = fleet.endpoint(1)      # http://127.0.0.1:PORT/wsman of LAB-EX01
        fleet.counters.snapshot()

``host_factory(server_spec) -> PowerShellHost`` is called once per server at start. The default
is the emulated Exchange organisation (``exchange.lab.ExchangeHostFactory``), built from the spec
when the fleet is made, so ``fleet.org`` (its directory, servers and clock) exists before start;
``wire.stub_host.StubHost`` knows no command at all (wire tests). Listening sockets are bound in the
calling thread (no resolver threads); a server with the ``refuse`` fault keeps its port bound but
never listens, so connections to it are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import resource
import socket
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from emconsole.backends.lab.host import PowerShellHost
from emconsole.backends.lab.spec import LabSpec, ServerSpec, SpecError
from emconsole.backends.lab.wire.auth import Authenticator, NtlmUserFile
from emconsole.backends.lab.wire.counters import Counters
from emconsole.backends.lab.wire.loop import WireLoop
from emconsole.backends.lab.wire.server import WireServer
from emconsole.backends.lab.wire.tls import LabCA

if TYPE_CHECKING:
    from emconsole.backends.lab.exchange.org import Organisation

HostFactory = Callable[[ServerSpec], PowerShellHost]
_AUTO_PORT_RANGE = (10000, 32000)  # below Linux's ephemeral range, so clients never collide with it


def raise_open_file_limit(needed: int) -> None:
    """Raise the soft RLIMIT_NOFILE towards ``needed`` (within the hard limit) where the OS allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def bind_port_range(count: int, first_port: int, seed: int = 0) -> tuple[int, list[socket.socket]]:
    """Bind ``count`` consecutive loopback ports from ``first_port`` (0: find a free range)."""
    attempts = 1 if first_port else 40
    rng = random.Random(seed ^ id(object()))
    last_error: OSError | None = None
    for _ in range(attempts):
        base = first_port or rng.randrange(_AUTO_PORT_RANGE[0], _AUTO_PORT_RANGE[1] - count)
        sockets: list[socket.socket] = []
        try:
            for i in range(count):
                sockets.append(_bind(base + i))
            return base, sockets
        except OSError as exc:
            last_error = exc
            for sock in sockets:
                sock.close()
    raise SpecError(f"cannot bind {count} ports from {first_port or 'a free range'}: {last_error}")


class LabFleet:
    """Start and stop a whole lab; read its servers, endpoints, CA and counters."""

    def __init__(
        self, spec: LabSpec, host_factory: HostFactory | None = None, workdir: Path | None = None
    ) -> None:
        spec.validate()
        self.spec = spec
        if host_factory is None:
            from emconsole.backends.lab.exchange.lab import ExchangeHostFactory

            host_factory = ExchangeHostFactory(spec)
        self.host_factory: HostFactory = host_factory
        self._workdir = workdir
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.servers: list[ServerSpec] = []
        self.wire: list[WireServer] = []
        self.counters = Counters()
        self.first_port = 0
        self.ca: LabCA | None = None  # https: the CA that signs server (and client) certificates
        self.ca_path: Path | None = None
        self.client_cert: tuple[Path, Path] | None = None  # (cert, key) PEM paths for certificate auth
        self._loop: WireLoop | None = None
        self._sockets: list[socket.socket] = []
        self._listeners: list[asyncio.AbstractServer] = []
        self._ntlm_file: NtlmUserFile | None = None

    @property
    def directory(self) -> Path:
        """Where the lab keeps its CA, keys and NTLM user file (a temporary directory by default)."""
        if self._workdir is not None:
            return self._workdir
        assert self._tmp is not None, "the lab is not started"
        return Path(self._tmp.name)

    @property
    def org(self) -> Organisation:
        """The emulated organisation behind the servers (state, ``advance`` the clock); needs the
        default host factory or another with an ``org``."""
        org = getattr(self.host_factory, "org", None)
        if org is None:
            raise AttributeError("this lab runs a host without an Exchange organisation")
        return org

    def endpoint(self, server: int | str) -> str:
        """The WS-Man URL of a server, by number (1-based, as in its name) or by name."""
        spec = self.server(server)
        return f"{self.spec.scheme}://127.0.0.1:{spec.port}/wsman"

    def server(self, server: int | str) -> ServerSpec:
        for spec in self.servers:
            if server in (spec.number, spec.name):
                return spec
        raise KeyError(server)

    def start(self) -> LabFleet:
        spec = self.spec
        raise_open_file_limit(spec.servers * 3 + 256)
        if self._workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="emconsole-lab-")
        try:
            self.first_port, self._sockets = bind_port_range(spec.servers, spec.first_port, spec.seed)
            self.servers = spec.server_specs(self.first_port)
            https = spec.scheme == "https"
            ca = self.ca = LabCA(self.directory) if https else None
            self.ca_path = ca.ca_path if ca else None
            client_certs = spec.auth == "certificate"
            if ca is not None and client_certs:
                self.client_cert = ca.issue_client(spec.username, spec.domain)
            if spec.auth == "ntlm":
                self._ntlm_file = NtlmUserFile(self.directory, spec.domain, spec.username, spec.password)
            authenticator = Authenticator(
                spec.auth, spec.username, spec.password, spec.domain, https, spec.allow_unencrypted
            )
            self._loop = WireLoop()
            self._loop.start()
            self.counters.loop_thread = self._loop.thread
            for server_spec, sock in zip(self.servers, self._sockets, strict=True):
                wire = WireServer(
                    server_spec, self.host_factory(server_spec), authenticator, self.counters, https
                )
                self.wire.append(wire)
                if server_spec.faults.refuse:
                    continue  # bound, never listening: connections are refused
                sock.listen(128)
                context = ca.server_context(server_spec.faults.tls or "good", client_certs) if ca else None
                self._listeners.append(self._loop.run(self._listen(wire, sock, context)))
        except BaseException:
            self.stop()
            raise
        return self

    @staticmethod
    async def _listen(
        wire: WireServer, sock: socket.socket, context: ssl.SSLContext | None
    ) -> asyncio.AbstractServer:
        loop = asyncio.get_running_loop()
        if context is None:
            return await loop.create_server(wire.connection, sock=sock)
        return await loop.create_server(wire.connection, sock=sock, ssl=context, ssl_handshake_timeout=30)

    async def _close_all(self) -> None:
        for listener in self._listeners:
            listener.close()
        for wire in self.wire:
            wire.close_connections()
        await asyncio.sleep(0)  # the aborted connections are lost (and counted) on this turn of the loop
        for listener in self._listeners:
            await listener.wait_closed()

    def stop(self) -> None:
        """Close every listener and connection, stop the loop thread, remove the lab's files."""
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.run(self._close_all(), timeout=30)
            self._loop.stop()
            self._loop = None
        for sock in self._sockets:
            sock.close()
        self._sockets, self._listeners, self.wire = [], [], []
        if self._ntlm_file is not None:
            self._ntlm_file.restore()
            self._ntlm_file = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> LabFleet:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
