"""The organisation's shared "Active Directory": Exchange server objects and the organisation config.

Every server of the lab reads and writes this one object, so ``Set-ExchangeServer -Identity X`` on
any server changes X for all of them, as in a real organisation.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from operator import attrgetter
from random import Random
from typing import Any

from emconsole.backends.lab.exchange import shapes
from emconsole.backends.lab.exchange.builds import Build
from emconsole.backends.lab.pwsh.api import PSEnum, PSObject

INSTALL_PATH = "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\"
EXCHANGE_SERVER = (
    "Microsoft.Exchange.Data.Directory.Management.ExchangeServer",
    "Microsoft.Exchange.Data.Directory.Management.ADPresentationObject",
    "Microsoft.Exchange.Data.Directory.ADObject",
    "Microsoft.Exchange.Data.Directory.ADRawEntry",
    "Microsoft.Exchange.Data.ConfigurableObject",
    "System.Object",
)
ORGANIZATION_CONFIG = (
    "Microsoft.Exchange.Data.Directory.Management.OrganizationConfig",
    *EXCHANGE_SERVER[1:],
)


def value_object(type_name: str, text: str, properties: dict[str, Any] | None = None) -> PSObject:
    """A .NET object with its own ToString (ServerVersion, ADObjectId, ...): ``[string]`` shows ``text``."""
    return PSObject(properties or {}, type_names=(type_name, "System.Object"), to_string=text)


def is_blocked(full_id: str, blocked: list[str], mode: str) -> bool:
    """Whether ``MitigationsBlocked`` blocks an ID: the one place the (UNCONFIRMED) matching rule lives.

    ``short``: an entry blocks the IDs of its base (``M2`` blocks ``M2.1.0``; the full ID matches too).
    ``full``: only the exact full ID blocks.
    """
    wanted = {b.strip().lower() for b in blocked}
    if full_id.lower() in wanted:
        return True
    return mode == "short" and full_id.split(".", 1)[0].lower() in wanted


@dataclass(frozen=True)
class _ShapePlan:
    """A ``shapes`` table worked out once: what ``Directory._fill`` copies, makes fresh, or aliases."""

    #: every property in table order with its value: the final one for the immutable kinds (strings,
    #: bools, numbers, times, $null, frozen PSEnums), None for a place the other kinds fill
    fixed: dict[str, Any]
    lists: tuple[str, ...]
    objects: tuple[tuple[str, str, str], ...]  # (name, type name, ToString template)
    refs: tuple[tuple[str, str], ...]  # (name, the property it is the same object as)


_BUILD_VERSION = attrgetter("build.version")  # of a ServerRecord (org_object reads every server's)
_PLANS: dict[int, tuple[tuple[tuple[str, str, Any], ...], _ShapePlan]] = {}


def _plan(rows: tuple[tuple[str, str, Any], ...]) -> _ShapePlan:
    """The table's plan (kept by identity: the tables are module constants). A table must name each
    property once, with a known kind, and a Ref after the property it repeats."""
    known = _PLANS.get(id(rows))
    if known is not None and known[0] is rows:
        return known[1]
    fixed: dict[str, Any] = {}
    lists: list[str] = []
    objects: list[tuple[str, str, str]] = []
    refs: list[tuple[str, str]] = []
    for name, kind, spec in rows:
        if name in fixed or (kind == "Ref" and spec not in fixed):
            raise ValueError(f"shape table: {name} named twice or before the property it repeats")
        fixed[name] = None  # the property's place in the order; the lists, objects and refs fill it
        if kind in ("S", "B", "I32", "U32", "Nil", "DT", "G"):
            fixed[name] = spec
        elif kind == "enum":
            fixed[name] = PSEnum(*spec)
        elif kind == "list":
            lists.append(name)
        elif kind == "obj":
            objects.append((name, spec[0], spec[1] or ""))
        elif kind == "Ref":
            refs.append((name, spec))
        else:
            raise ValueError(f"shape table: {name} has an unknown kind {kind!r}")
    plan = _ShapePlan(fixed, tuple(lists), tuple(objects), tuple(refs))
    _PLANS[id(rows)] = (rows, plan)
    return plan


@dataclass
class ServerRecord:
    """One server's Exchange object in AD."""

    name: str
    build: Build
    domain: str
    mitigations_enabled: bool = True
    applied: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    applied_time: datetime | None = None
    data_collection: bool = False
    proxy: str | None = None
    guid: str = ""
    when_created: datetime = datetime(2024, 5, 6, 10, 0, tzinfo=timezone.utc)
    when_changed: datetime = datetime(2024, 5, 6, 10, 0, tzinfo=timezone.utc)

    @property
    def fqdn(self) -> str:
        return f"{self.name.lower()}.{self.domain}"


@dataclass
class OrgRecord:
    """The organisation config object."""

    name: str = "LabOrg"
    mitigations_enabled: bool = True
    guid: str = ""
    when_changed: datetime = datetime(2024, 5, 6, 9, 0, tzinfo=timezone.utc)


@dataclass
class Directory:
    """The shared AD: server objects by name, the org config, and lab settings about them."""

    domain: str = "contoso.local"
    dc: str = "dc01.contoso.local"
    org: OrgRecord = field(default_factory=OrgRecord)
    servers: dict[str, ServerRecord] = field(default_factory=dict)
    block_match: str = "short"
    applied_time_property: bool = True
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def add(self, record: ServerRecord, rng: Random) -> None:
        record.guid = record.guid or str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.servers[record.name.upper()] = record

    def find(self, identity: str) -> ServerRecord | None:
        """By name, FQDN or GUID, case-insensitive (as -Identity resolves a server)."""
        key = identity.strip()
        direct = self.servers.get(key.upper())
        if direct is not None:
            return direct
        for record in self.servers.values():
            if key.lower() in (record.name.lower(), record.fqdn.lower(), record.guid.lower()):
                return record
        return None

    def is_blocked(self, full_id: str, record: ServerRecord) -> bool:
        return is_blocked(full_id, record.blocked, self.block_match)

    # -- presentation objects -----------------------------------------------------------------
    @staticmethod
    def _fill(rows: tuple[tuple[str, str, Any], ...], values: dict[str, str]) -> dict[str, Any]:
        plan = _plan(rows)
        out = dict(plan.fixed)
        for name in plan.lists:
            out[name] = []
        for name, type_name, shown in plan.objects:
            out[name] = value_object(type_name, shown.format(**values))
        for name, target in plan.refs:
            out[name] = out[target]
        return out

    def server_object(self, record: ServerRecord) -> PSObject:
        """What Get-ExchangeServer returns for one server."""
        major, minor, number, rev = record.build.parts
        values = {
            "name": record.name,
            "fqdn": record.fqdn,
            "domain": self.domain,
            "org": self.org.name,
            "install": INSTALL_PATH,
            "version": record.build.admin_display_version,
            "build": record.build.version,
            "recipient": "",
        }
        props = self._fill(shapes.EXCHANGE_SERVER, values)
        group = "Exchange Administrative Group (FYDIBOHF23SPDLT)"
        props.update(
            {
                "Name": record.name,
                "DataPath": value_object(
                    "Microsoft.Exchange.Data.LocalLongFullPath", f"{INSTALL_PATH}Mailbox"
                ),
                "Domain": self.domain,
                "Edition": PSEnum("Microsoft.Exchange.Data.ServerEditionType", "Standard", 1),
                "ExchangeLegacyDN": (
                    f"/o={self.org.name}/ou={group}/cn=Configuration/cn=Servers/cn={record.name}"
                ),
                "Fqdn": record.fqdn,
                "InternetWebProxy": value_object("System.Uri", record.proxy) if record.proxy else None,
                "OrganizationalUnit": f"{self.domain}/{record.name}",
                "AdminDisplayVersion": value_object(
                    "Microsoft.Exchange.Data.ServerVersion",
                    record.build.admin_display_version,
                    {
                        "Major": major,
                        "Minor": minor,
                        "Build": number,
                        "Revision": rev,
                        "FilePatchLevelDescription": None,
                    },
                ),
                "MitigationsEnabled": record.mitigations_enabled,
                "CurrentConfigDomainController": self.dc,
                "IsExchangeTrialEdition": False,
                "IsExpiredExchangeTrialEdition": False,
                "MitigationsApplied": list(record.applied) or None,
                "MitigationsBlocked": list(record.blocked) or None,
                "DataCollectionEnabled": record.data_collection,
                "DistinguishedName": (
                    f"CN={record.name},CN=Servers,CN={group},CN=Administrative Groups,"
                    f"CN={self.org.name},CN=Microsoft Exchange,CN=Services,CN=Configuration,"
                    + ",".join(f"DC={p}" for p in self.domain.split("."))
                ),
                "Guid": record.guid,
                "WhenChanged": record.when_changed,
                "WhenCreated": record.when_created,
                "WhenChangedUTC": record.when_changed,
                "WhenCreatedUTC": record.when_created,
                "OriginatingServer": self.dc,
            }
        )
        if self.applied_time_property:
            props["MitigationsAppliedTime"] = record.applied_time
        return PSObject(props, type_names=EXCHANGE_SERVER, to_string=record.name)

    def org_object(self) -> PSObject:
        """What Get-OrganizationConfig returns."""
        recipient = self.org.guid.replace("-", "")
        values = {
            "name": "",
            "fqdn": "",
            "domain": self.domain,
            "org": self.org.name,
            "install": INSTALL_PATH,
            "version": "",
            "build": max(map(_BUILD_VERSION, self.servers.values()), default="15.2.0.0"),
            "recipient": recipient,
        }
        props = self._fill(shapes.ORGANIZATION_CONFIG, values)
        props.update(
            {
                "Name": self.org.name,
                "Guid": self.org.guid,
                "MitigationsEnabled": self.org.mitigations_enabled,
                "LegacyExchangeDN": f"/o={self.org.name}",
                "DistinguishedName": (
                    f"CN={self.org.name},CN=Microsoft Exchange,CN=Services,CN=Configuration,"
                    + ",".join(f"DC={p}" for p in self.domain.split("."))
                ),
                "WhenChanged": self.org.when_changed,
                "WhenCreated": datetime(2024, 5, 6, 9, 0, tzinfo=timezone.utc),
                "WhenChangedUTC": self.org.when_changed,
                "WhenCreatedUTC": datetime(2024, 5, 6, 9, 0, tzinfo=timezone.utc),
                "FocusedInboxOnLastUpdateTime": datetime(1, 1, 1),
                "ForestConfigLastRunTime": datetime(1, 1, 1),
                "OriginatingServer": self.dc,
            }
        )
        return PSObject(props, type_names=ORGANIZATION_CONFIG, to_string=self.org.name)
