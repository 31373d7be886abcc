"""Point the console at a lab fleet: an emulated Exchange organisation, a ``Config`` and a password.

Used by ``emconsole --demo`` (lab in-process) and by tests. The config mirrors what ``emconsole lab
--write-config`` writes for a lab in another process (same names, ports, transport, user and
``password_from``); here the password is handed to the backend directly, never put in the config.
Everything lab-related is imported lazily so the console pays for it only when it starts a lab.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emconsole.config import Config, ServerConfig

if TYPE_CHECKING:
    from emconsole.backends.lab.exchange.org import Organisation
    from emconsole.backends.lab.fleet import HostFactory, LabFleet
    from emconsole.backends.lab.spec import LabSpec
    from emconsole.backends.winrm.backend import WinRMBackend

LAB_PASSWORD_ENV = "EMCONSOLE_LAB_PASSWORD"  # the name `emconsole lab --write-config` refers to


@dataclass
class Lab:
    """A started lab: the wire fleet and the organisation behind it (tests drive its clock)."""

    fleet: LabFleet
    org: Organisation

    def stop(self) -> None:
        self.fleet.stop()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def exchange_host_factory(spec: LabSpec) -> tuple[HostFactory, Organisation]:
    """One ExchangeHost for the whole organisation the spec describes (server names don't need ports)."""
    from emconsole.backends.lab.exchange.lab import ExchangeHostFactory

    factory = ExchangeHostFactory(spec)
    return factory, factory.org


def start_lab(spec: LabSpec | None = None, **fields: Any) -> Lab:
    """Start a lab of emulated Exchange servers on loopback (``fields``: LabSpec fields)."""
    from emconsole.backends.lab.fleet import LabFleet
    from emconsole.backends.lab.spec import LabSpec

    if spec is None:
        fields.setdefault("first_port", 0)
        spec = LabSpec(**fields)
    factory, org = exchange_host_factory(spec)
    return Lab(LabFleet(spec, host_factory=factory).start(), org)


def lab_servers(fleet: LabFleet, ems: str = "snapin") -> tuple[ServerConfig, ...]:
    """One ServerConfig per lab server, as ``emconsole lab --write-config`` describes them."""
    from emconsole.backends.lab.configfile import server_entries

    return tuple(ServerConfig.model_validate(entry) for entry in server_entries(fleet, ems))


def lab_extras(fleet: LabFleet) -> dict[str, Any]:
    """The ``extra_catalogue`` and ``extra_builds`` a config for this lab needs, as ``--write-config``
    writes them: the lab's LAB-ONLY service and app-pool mitigations (without them the status script
    never asks about their services and app pools) and any build the package's table lacks."""
    org = getattr(fleet.host_factory, "org", None)
    if org is None:  # a fleet of stub hosts: no organisation, nothing to add
        return {}
    from emconsole.backends.lab.exchange.knowledge import lab_catalogue, missing_builds
    from emconsole.knowledge import load_knowledge

    builds = missing_builds(org, load_knowledge().builds)
    return {"extra_catalogue": lab_catalogue(org), "extra_builds": builds}


def lab_config(fleet: LabFleet, *, concurrency: int = 32, call_timeout: float = 20.0, read_only: bool = False,
               audit_path: Path | None = None, ems: str = "snapin") -> Config:
    """A Config for a running lab fleet (with the lab's catalogue and build extras)."""
    return Config(servers=lab_servers(fleet, ems), concurrency=concurrency, call_timeout=call_timeout,
                  read_only=read_only, audit_path=audit_path, **lab_extras(fleet))


def lab_password_lookup(fleet: LabFleet) -> Callable[[ServerConfig], str | None]:
    """The lab's password for every server (kept in memory, never in the config)."""
    password = fleet.spec.password
    return lambda _server: password


def lab_backend(fleet: LabFleet) -> WinRMBackend:
    """The real WinRM backend, with the lab's password."""
    from emconsole.backends.winrm.backend import WinRMBackend

    return WinRMBackend(lab_password_lookup(fleet))
