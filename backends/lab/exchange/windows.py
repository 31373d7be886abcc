"""One server's Windows state: services, the Application event log and a small file system.

Service objects follow the real ``Get-Service`` capture (ServiceController with Status, StartType,
ServiceName, DisplayName, DependentServices, ServicesDependedOn); events follow Get-WinEvent's
EventLogRecord shape; files are just enough of NTFS for backups under ``$env:ProgramData``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from emconsole.backends.lab.pwsh.api import PSEnum, PSObject

SERVICE_CONTROLLER = (
    "System.ServiceProcess.ServiceController",
    "System.ComponentModel.Component",
    "System.MarshalByRefObject",
    "System.Object",
)
_STATUS = {"Stopped": 1, "StartPending": 2, "StopPending": 3, "Running": 4}
_START = {"Boot": 0, "System": 1, "Automatic": 2, "Manual": 3, "Disabled": 4}
_CIM_MODE = {
    "Automatic": "Auto",
    "Manual": "Manual",
    "Disabled": "Disabled",
    "Boot": "Boot",
    "System": "System",
}
EM_SERVICE = "MSExchangeMitigation"
AD_TOPOLOGY = "MSExchangeADTopology"
EM_PROVIDER = "MSExchange Mitigation Service"

# name, display name, start type, depends on
_SERVICES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("NetTcpPortSharing", "Net.Tcp Port Sharing Service", "Manual", ()),
    (AD_TOPOLOGY, "Microsoft Exchange Active Directory Topology", "Automatic", ("NetTcpPortSharing",)),
    (EM_SERVICE, "Microsoft Exchange Emergency Mitigation Service", "Automatic", (AD_TOPOLOGY,)),
    ("MSExchangeIS", "Microsoft Exchange Information Store", "Automatic", (AD_TOPOLOGY,)),
    ("MSExchangeTransport", "Microsoft Exchange Transport", "Automatic", (AD_TOPOLOGY,)),
    ("MSExchangeFrontEndTransport", "Microsoft Exchange Frontend Transport", "Automatic", (AD_TOPOLOGY,)),
    ("MSExchangeServiceHost", "Microsoft Exchange Service Host", "Automatic", (AD_TOPOLOGY,)),
    ("MSExchangeImap4", "Microsoft Exchange IMAP4", "Automatic", (AD_TOPOLOGY,)),
    ("MSExchangePop3", "Microsoft Exchange POP3", "Manual", (AD_TOPOLOGY,)),
    ("W3SVC", "World Wide Web Publishing Service", "Automatic", ()),
    ("WinRM", "Windows Remote Management (WS-Management)", "Automatic", ()),
)


@dataclass
class Service:
    """A Windows service: status, start type, the process it runs in."""

    name: str
    display_name: str
    start_type: str
    depends_on: tuple[str, ...]
    status: str = "Stopped"
    pid: int = 0


@dataclass
class Event:
    """One Application log record."""

    record_id: int
    event_id: int
    time: datetime
    level: str  # Information | Warning | Error
    provider: str
    message: str
    log: str = "Application"


@dataclass
class Windows:
    """Services, event log and files of one server."""

    services: dict[str, Service] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # lower-case path -> content
    file_names: dict[str, str] = field(default_factory=dict)  # lower-case path -> path as created
    mtimes: dict[str, datetime] = field(default_factory=dict)  # lower-case path -> LastWriteTime
    dirs: set[str] = field(default_factory=set)  # lower-case directory paths
    next_pid: int = 4100

    @classmethod
    def default(cls, first_pid: int) -> Windows:
        win = cls(next_pid=first_pid)
        for name, display, start, deps in _SERVICES:
            service = Service(name, display, start, deps)
            win.services[name.lower()] = service
            if start == "Automatic":
                win.start(name)
        for path in (
            "C:\\",
            "C:\\ProgramData",
            "C:\\Windows",
            "C:\\Windows\\Temp",
            "C:\\Program Files\\Microsoft\\Exchange Server\\V15",
            "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\bin",
            "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\Scripts",
            "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\Logging\\MitigationService",
        ):
            win.make_dir(path)
        return win

    # -- services ------------------------------------------------------------------------------
    def service(self, name: str) -> Service | None:
        return self.services.get(name.lower())

    def start(self, name: str) -> Service:
        """Start a service (and what it depends on); a new process ID each time."""
        service = self.services[name.lower()]
        for dep in service.depends_on:
            if self.services[dep.lower()].status != "Running":
                self.start(dep)
        if service.status != "Running":
            self.next_pid += 4 + (self.next_pid % 7) * 4
            service.status, service.pid = "Running", self.next_pid
        return service

    def stop(self, name: str) -> Service:
        service = self.services[name.lower()]
        service.status, service.pid = "Stopped", 0
        return service

    def dependents(self, name: str) -> list[Service]:
        return [s for s in self.services.values() if any(d.lower() == name.lower() for d in s.depends_on)]

    def service_object(self, service: Service, machine: str, depth: int = 0) -> PSObject:
        """A ServiceController as Get-Service returns it (nested services one level deep)."""
        nested = depth == 0
        dependents: list[Any] = [
            self.service_object(s, machine, 1) if nested else s.name for s in self.dependents(service.name)
        ]
        depended: list[Any] = [
            self.service_object(self.services[d.lower()], machine, 1) if nested else d
            for d in service.depends_on
        ]
        obj = PSObject(
            {
                "CanPauseAndContinue": False,
                "CanShutdown": service.status == "Running",
                "CanStop": service.status == "Running",
                "DisplayName": service.display_name,
                "DependentServices": dependents,
                "MachineName": machine,
                "ServiceName": service.name,
                "ServicesDependedOn": depended,
                "ServiceHandle": PSObject(
                    {"IsInvalid": False, "IsClosed": False},
                    type_names=(
                        "SafeServiceHandle",
                        "System.Runtime.InteropServices.SafeHandle",
                        "System.Object",
                    ),
                    to_string="SafeServiceHandle",
                ),
                "Status": PSEnum(
                    "System.ServiceProcess.ServiceControllerStatus", service.status, _STATUS[service.status]
                ),
                "ServiceType": PSEnum("System.ServiceProcess.ServiceType", "Win32OwnProcess", 16),
                "StartType": PSEnum(
                    "System.ServiceProcess.ServiceStartMode", service.start_type, _START[service.start_type]
                ),
                "Site": None,
                "Container": None,
                "Name": service.name,
            },
            type_names=SERVICE_CONTROLLER,
            to_string=service.name,
        )
        obj["RequiredServices"] = obj["ServicesDependedOn"]
        return obj

    def cim_object(self, service: Service) -> PSObject:
        """A Win32_Service CIM instance (the fields the subset uses)."""
        return PSObject(
            {
                "Name": service.name,
                "DisplayName": service.display_name,
                "State": service.status,
                "StartMode": _CIM_MODE[service.start_type],
                "ProcessId": service.pid,
                "Started": service.status == "Running",
                "Status": "OK",
            },
            type_names=(
                "Microsoft.Management.Infrastructure.CimInstance#root/cimv2/Win32_Service",
                "Microsoft.Management.Infrastructure.CimInstance",
                "System.Object",
            ),
        )

    # -- events --------------------------------------------------------------------------------
    def write_event(
        self, event_id: int, time: datetime, level: str, message: str, provider: str = EM_PROVIDER
    ) -> Event:
        event = Event(len(self.events) + 1, event_id, time, level, provider, message)
        self.events.append(event)
        return event

    @staticmethod
    def event_object(event: Event, machine: str) -> PSObject:
        return PSObject(
            {
                "Id": event.event_id,
                "TimeCreated": event.time,
                "LevelDisplayName": event.level,
                "ProviderName": event.provider,
                "Message": event.message,
                "RecordId": event.record_id,
                "LogName": event.log,
                "MachineName": machine,
                "Level": {"Error": 2, "Warning": 3, "Information": 4}[event.level],
            },
            type_names=(
                "System.Diagnostics.Eventing.Reader.EventLogRecord",
                "System.Diagnostics.Eventing.Reader.EventRecord",
                "System.Object",
            ),
        )

    # -- files ---------------------------------------------------------------------------------
    @staticmethod
    def norm(path: str) -> str:
        return path.replace("/", "\\").rstrip("\\").lower() or "c:"

    def make_dir(self, path: str) -> None:
        parts = path.replace("/", "\\").rstrip("\\").split("\\")
        for i in range(1, len(parts) + 1):
            self.dirs.add(self.norm("\\".join(parts[:i])))

    def is_dir(self, path: str) -> bool:
        return self.norm(path) in self.dirs

    def exists(self, path: str) -> bool:
        return self.is_dir(path) or self.norm(path) in self.files

    def parent_exists(self, path: str) -> bool:
        return self.is_dir(path.replace("/", "\\").rstrip("\\").rpartition("\\")[0])

    def write_file(self, path: str, content: str, when: datetime | None = None) -> None:
        self.files[self.norm(path)] = content
        if when is not None:
            self.mtimes[self.norm(path)] = when
        self.file_names[self.norm(path)] = path.replace("/", "\\")

    def read_file(self, path: str) -> str | None:
        return self.files.get(self.norm(path))

    def children(self, path: str) -> list[tuple[str, bool]]:
        """(full path, is directory) of a directory's entries, sorted as Get-ChildItem lists them."""
        base = self.norm(path) + "\\"
        dirs = sorted(d for d in self.dirs if d.startswith(base) and "\\" not in d[len(base) :])
        files = sorted(f for f in self.files if f.startswith(base) and "\\" not in f[len(base) :])
        shown = path.replace("/", "\\").rstrip("\\")
        return [(f"{shown}\\{d[len(base) :]}", True) for d in dirs] + [
            (self.file_names[f], False) for f in files
        ]
