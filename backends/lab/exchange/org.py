"""The lab organisation: the shared directory, one ``LabServer`` per server, the catalogue, the clock.

``build_org`` turns a seed and an ``ExchangeSpec`` (see ``spec.py``) into a ready organisation;
``Organisation.sync`` runs every EM check that is due on the virtual clock (called before each
command and by tests after ``advance``), so time only moves when someone looks.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from random import Random

from emconsole.backends.lab.exchange.builds import Build
from emconsole.backends.lab.exchange.catalogue import M1, CatalogueState, Entry
from emconsole.backends.lab.exchange.clock import VirtualClock
from emconsole.backends.lab.exchange.directory import INSTALL_PATH, Directory, ServerRecord
from emconsole.backends.lab.exchange.engine import RUN_INTERVAL, START_DELAY, run_em
from emconsole.backends.lab.exchange.iis import IIS
from emconsole.backends.lab.exchange.windows import EM_SERVICE, Windows


@dataclass
class HostFaults:
    """PowerShell-level faults of one server (names as in ``spec.HOST_FAULTS``)."""

    ems_unavailable: bool = False
    ad_second_hop: bool = False
    ocs_unreachable: bool = False
    garbage: bool = False
    truncate: bool = False
    slow_s: float = 0.0


@dataclass
class LabServer:
    """One Exchange server: its AD object (shared), its local Windows/IIS state, faults, EM schedule."""

    org: Organisation
    name: str
    windows: Windows
    iis: IIS
    faults: HostFaults = field(default_factory=HostFaults)
    _next_run: datetime | None = field(default=None, repr=False)
    last_run: datetime | None = None
    ocs_ok: bool | None = None
    results: dict[str, str] = field(default_factory=dict)
    known: dict[str, Entry] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def next_run(self) -> datetime | None:
        """When the EM service's next check is due (None: no check is scheduled)."""
        return self._next_run

    @next_run.setter
    def next_run(self, when: datetime | None) -> None:
        self._next_run = when
        self.org.due_by(when)

    @property
    def record(self) -> ServerRecord:
        record = self.org.directory.find(self.name)
        assert record is not None
        return record

    @property
    def env(self) -> dict[str, str]:
        """``$env:`` as on an Exchange server."""
        return {
            "COMPUTERNAME": self.name,
            "ExchangeInstallPath": INSTALL_PATH,
            "ProgramData": "C:\\ProgramData",
            "windir": "C:\\Windows",
            "SystemRoot": "C:\\Windows",
            "TEMP": "C:\\Windows\\TEMP",
            "TMP": "C:\\Windows\\TEMP",
            "USERDNSDOMAIN": self.org.directory.domain.upper(),
            "PSModulePath": "C:\\Windows\\system32\\WindowsPowerShell\\v1.0\\Modules",
        }

    def service_started(self, at: datetime | None = None) -> None:
        """Called whenever MSExchangeMitigation starts: its first check is ~10 minutes later."""
        self.next_run = (at or self.org.clock.now()) + START_DELAY

    def service_stopped(self) -> None:
        self.next_run = None

    def run_due(self, now: datetime) -> int:
        """Run every check due up to ``now`` (each at its own scheduled time)."""
        runs = 0
        with self.lock:
            service = self.windows.service(EM_SERVICE)
            while self.next_run is not None and self.next_run <= now:
                if service is None or service.status != "Running":
                    self.next_run = None
                    break
                at = self.next_run
                run_em(self, at)
                self.next_run = at + RUN_INTERVAL
                runs += 1
        return runs


@dataclass
class Organisation:
    """Everything the lab emulates, shared by every server's host."""

    clock: VirtualClock
    directory: Directory
    catalogue: CatalogueState
    seed: int = 0
    servers: dict[str, LabServer] = field(default_factory=dict)
    #: the earliest check scheduled on any server, in the clock's ``seconds`` (None: none is): until
    #: then ``sync`` has nothing to do
    _earliest: float | None = field(default=None, init=False, repr=False)
    _syncing: int = field(default=0, init=False, repr=False)
    _due_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def server(self, name: str) -> LabServer:
        """By name (case-insensitive)."""
        return self.servers[name.upper()]

    def due_by(self, when: datetime | None) -> None:
        """A server scheduled a check at ``when``."""
        if when is None:
            return
        seconds = self.clock.seconds_at(when)
        with self._due_lock:
            if self._earliest is None or seconds < self._earliest:
                self._earliest = seconds

    def sync(self) -> int:
        """Run every EM check due on the virtual clock; returns how many ran.

        Called before every command, so it must not cost a pass over all servers when nothing is due
        (it did: 200 servers x ~85 cmdlets per status script). While another thread is in a pass,
        this one makes its own, as it did before: a command never runs before what is due has run.
        """
        seconds = self.clock.seconds()
        with self._due_lock:
            if not self._syncing and (self._earliest is None or seconds < self._earliest):
                return 0
            self._syncing += 1
        try:
            now = self.clock.at(seconds)
            return sum(s.run_due(now) for s in self.servers.values())
        finally:
            with self._due_lock:
                self._syncing -= 1
                pending = [s.next_run for s in self.servers.values() if s.next_run is not None]
                self._earliest = self.clock.seconds_at(min(pending)) if pending else None

    def advance(self, delta: timedelta | float) -> int:
        """Move the clock forward and run what became due (tests)."""
        self.clock.advance(delta)
        return self.sync()

    def add_server(self, name: str, build: Build, rng: Random) -> LabServer:
        record = ServerRecord(name.upper(), build, self.directory.domain)
        self.directory.add(record, rng)
        server = LabServer(self, name.upper(), Windows.default(4000 + rng.randrange(1000) * 4), IIS())
        self.servers[name.upper()] = server
        return server

    def leave_m1(self, server: LabServer, listed: bool, at: datetime) -> None:
        """An M1 rule from 2022: listed in MitigationsApplied (old application) or not (leftover)."""
        server.iis.merge_rewrite(server.iis.location(M1.actions[0].target), M1.actions[0].value)
        if listed:
            server.record.applied.append(M1.id)
            server.record.applied_time = at
