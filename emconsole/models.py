"""The domain model: what the console knows about servers, mitigations, changes and failures.

Pure data (pydantic v2, no I/O) shared by the remote-script parsers, the engine, the UI and the
headless CLI. Models are frozen so a snapshot handed to the UI can never be changed under it;
collections are tuples for the same reason.

Two questions Microsoft's documentation leaves open are answered in exactly one place here:
``block_matches`` (does a ``MitigationsBlocked`` entry cover an applied ID?) and the parsers of the
Get-Mitigations.ps1 ``Type`` and ``Status`` strings (``parse_mitigation_kind``,
``parse_mitigation_status``). Which artifacts belong to a mitigation is answered here too
(``same_base_id``, ``artifact_match_ids``), for the status conversion and the delete alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, computed_field, field_validator, model_validator

#: Mitigation IDs the console accepts as input (DESIGN.md "Remote scripts").
MITIGATION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MITIGATION_ID_RE = re.compile(MITIGATION_ID_PATTERN)


class _Frozen(BaseModel):
    """Base for every domain model: immutable and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _drop_computed(cls, data: Any) -> Any:
        """Accept a model's own dump back: derived fields are recomputed, not validated as extra."""
        if isinstance(data, dict) and cls.model_computed_fields:
            return {k: v for k, v in data.items() if k not in cls.model_computed_fields}
        return data


def _as_utc(value: datetime) -> datetime:
    """Times are kept in UTC; a naive time is taken as UTC (what the status script sends)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


# --------------------------------------------------------------------------- enums


class MitigationKind(str, Enum):
    """What a mitigation changes on the server (EXCHANGE-EM.md "The three kinds")."""

    URL_REWRITE = "url_rewrite"
    SERVICE = "service"
    APP_POOL = "app_pool"
    HEARTBEAT = "heartbeat"
    UNKNOWN = "unknown"


class MitigationStatus(str, Enum):
    """A mitigation's state on one server. ``UNKNOWN`` keeps the server's string in ``raw_status``."""

    APPLIED = "applied"
    BLOCKED = "blocked"
    FAILED = "failed"
    NOT_APPLICABLE = "not_applicable"
    NOT_APPLIED = "not_applied"
    PENDING = "pending"
    UNKNOWN = "unknown"


class ArtifactKind(str, Enum):
    """What a mitigation leaves behind on the server."""

    REWRITE_RULE = "rewrite_rule"
    REWRITE_PRECONDITION = "rewrite_precondition"
    SERVICE = "service"
    APP_POOL = "app_pool"


class Direction(str, Enum):
    """URL Rewrite rule direction: ``rules`` (inbound) or ``outboundRules`` (outbound)."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class FailureKind(str, Enum):
    """Why talking to a server failed, in categories an admin can act on."""

    AUTH = "auth"
    TLS = "tls"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    POWERSHELL = "powershell"
    EMS_NOT_LOADABLE = "ems_not_loadable"
    AD_SECOND_HOP = "ad_second_hop"
    OUTPUT_NOT_UNDERSTOOD = "output_not_understood"
    IDENTITY_MISMATCH = "identity_mismatch"
    QUOTA = "quota"
    READ_ONLY = "read_only"
    INVALID_INPUT = "invalid_input"


class ActionKind(str, Enum):
    """The operator's actions (EXCHANGE-EM.md "The operator's actions")."""

    REAPPLY = "reapply"
    BLOCK = "block"
    UNBLOCK = "unblock"
    DELETE = "delete"
    RESTORE = "restore"
    ENABLE = "enable"
    DISABLE = "disable"
    TEST_OCS = "test_ocs"


class ActionScope(str, Enum):
    """Where a switch is flipped: one server's ``MitigationsEnabled`` or the organisation's."""

    SERVER = "server"
    ORG = "org"


class OutcomeStatus(str, Enum):
    """How a change ended: read back and confirmed, not confirmed (and why), or failed."""

    DONE = "done"
    NOT_VERIFIED = "not_verified"
    FAILED = "failed"


# --------------------------------------------------------------------------- IDs


def base_id(full_id: str) -> str:
    """The mitigation's base ID: everything before the first dot.

    ``"M2.1.0" -> "M2"``, ``"M1.1" -> "M1"``, ``"PING1" -> "PING1"``, ``"M01.3" -> "M01"``.
    The base is kept exactly as the server wrote it: ``M01`` is *not* folded into ``M1``, because
    nothing published says the two name the same mitigation.
    """
    return full_id.strip().split(".", 1)[0]


def block_matches(entry: str, applied_id: str) -> bool:
    """Whether a ``MitigationsBlocked`` entry covers the applied (or catalogue) ID ``applied_id``.

    UNCONFIRMED in Microsoft's documentation (EXCHANGE-EM.md): whether Exchange matches the block
    list on the short ID (``M2``) or the full one (``M2.1.0``). The console takes both: an entry
    matches when it equals the full ID or the full ID's base ID, ignoring case and surrounding
    spaces. ``"M2"`` covers ``"M2.1.0"``; ``"M2.1.0"`` covers only ``"M2.1.0"``; a partial
    sub-version (``"M2.1"`` against ``"M2.1.0"``) does not match. Block writes both forms
    (DESIGN.md), so whichever rule Exchange uses, a block by the console holds.
    """
    e = entry.strip().casefold()
    if not e:
        return False
    full = applied_id.strip().casefold()
    return e == full or e == base_id(full)


def is_blocked(applied_id: str, blocked: tuple[str, ...] | list[str]) -> bool:
    """Whether any entry of a block list covers ``applied_id`` (see ``block_matches``)."""
    return any(block_matches(entry, applied_id) for entry in blocked)


def same_base_id(a: str, b: str) -> bool:
    """Whether two IDs share their base ID, ignoring case: how an artifact is matched to its mitigation.

    EM names a rule with a shorter sub-version than the ID it lists as applied (``EEMS M2.1 OWA CSP
    - outbound`` for ``M2.1.0``), so neither the full ID nor a prefix of it finds every artifact of
    a mitigation; the base ID does. The status conversion, the delete script (given
    ``artifact_match_ids``) and its read-back all match this way.
    """
    return base_id(a).casefold() == base_id(b).casefold()


def artifact_match_ids(ids: Iterable[str]) -> tuple[str, ...]:
    """The IDs the delete script matches rule names against (``EEMS <ID>.`` / ``EEMS <ID> ``): each
    base ID once, so ``M2.1.0`` finds ``EEMS M2.1 ...`` (see ``same_base_id``)."""
    out: dict[str, str] = {}
    for mid in ids:
        base = base_id(mid)
        out.setdefault(base.casefold(), base)
    return tuple(out.values())


def _norm_token(raw: str) -> str:
    return re.sub(r"[^a-z]", "", raw.casefold())


_STATUS_WORDS: dict[str, MitigationStatus] = {
    "applied": MitigationStatus.APPLIED,
    "blocked": MitigationStatus.BLOCKED,
    "failed": MitigationStatus.FAILED,
    "failure": MitigationStatus.FAILED,
    "notapplicable": MitigationStatus.NOT_APPLICABLE,
    "notapplied": MitigationStatus.NOT_APPLIED,
    "pending": MitigationStatus.PENDING,
}

_KIND_WORDS: dict[str, MitigationKind] = {
    "iis": MitigationKind.URL_REWRITE,
    "urlrewrite": MitigationKind.URL_REWRITE,
    "iisurlrewrite": MitigationKind.URL_REWRITE,
    "rewrite": MitigationKind.URL_REWRITE,
    "service": MitigationKind.SERVICE,
    "exchangeservice": MitigationKind.SERVICE,
    "apppool": MitigationKind.APP_POOL,
    "iisapppool": MitigationKind.APP_POOL,
    "heartbeat": MitigationKind.HEARTBEAT,
    "donothing": MitigationKind.HEARTBEAT,
    "ping": MitigationKind.HEARTBEAT,
}


def parse_mitigation_status(raw: str | None) -> MitigationStatus:
    """Map a Get-Mitigations.ps1 ``Status`` string to a status; anything unrecognised is UNKNOWN.

    The script's full set of Status strings is UNCONFIRMED: case, spaces, hyphens and underscores
    are ignored ("Not Applicable", "not_applicable", "NotApplicable" all map), nothing is guessed.
    """
    return _STATUS_WORDS.get(_norm_token(raw or ""), MitigationStatus.UNKNOWN)


def parse_mitigation_kind(raw: str | None) -> MitigationKind:
    """Map a mitigation ``Type`` string (Get-Mitigations.ps1 or the catalogue) to a kind."""
    return _KIND_WORDS.get(_norm_token(raw or ""), MitigationKind.UNKNOWN)


# --------------------------------------------------------------------------- server state


class Artifact(_Frozen):
    """One thing a mitigation left on a server, as found there.

    Rewrite rules and preconditions have ``pspath``, ``filter`` and ``direction``; services carry
    ``service_status``/``start_type``; app pools carry ``app_pool_state``.
    """

    kind: ArtifactKind
    name: str
    pspath: str | None = None
    filter: str | None = None
    direction: Direction | None = None
    service_status: str | None = None
    start_type: str | None = None
    app_pool_state: str | None = None

    @property
    def mitigation_id(self) -> str | None:
        """The ID an ``EEMS <ID> ...`` rule or precondition name carries, if any."""
        match = re.match(r"^EEMS\s+(\S+)\s", self.name)
        return match.group(1) if match else None

    def belongs_to(self, mitigation_id: str) -> bool:
        """Whether this is an artifact of ``mitigation_id`` (in any of its forms: ``same_base_id``)."""
        own = self.mitigation_id
        return own is not None and same_base_id(own, mitigation_id)


class Mitigation(_Frozen):
    """A mitigation on one server: the server's ID (``M2.1.0``), its state and what it left."""

    id: str
    kind: MitigationKind = MitigationKind.UNKNOWN
    description: str = ""
    status: MitigationStatus = MitigationStatus.UNKNOWN
    raw_status: str | None = None
    artifacts: tuple[Artifact, ...] = ()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def base_id(self) -> str:
        """The ID without its sub-version (see ``base_id``)."""
        return base_id(self.id)


class EmEvent(_Frozen):
    """An Application-log event of the EM service (1005/1006 success, 1008 error)."""

    id: int
    time: datetime
    level: str = ""
    provider: str = ""
    message: str = ""
    record_id: int | None = None

    @field_validator("time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return _as_utc(value)


class ServiceState(_Frozen):
    """The ``MSExchangeMitigation`` service: status and start type as Windows names them."""

    status: str
    start_type: str
    process_id: int | None = None

    @property
    def healthy(self) -> bool:
        """Healthy = Running with start type Automatic (EXCHANGE-EM.md)."""
        return self.status.casefold() == "running" and self.start_type.casefold().startswith("automatic")


class Backup(_Frozen):
    """A backup emconsole wrote on a server before a delete (``$env:ProgramData\\emconsole\\backups``)."""

    id: str
    created: datetime | None = None
    mitigation_ids: tuple[str, ...] = ()

    @field_validator("created")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _as_utc(value)


class ServerState(_Frozen):
    """One server's EM snapshot as read by the status script at ``read_time``.

    ``None`` means "not read / not reported", never "false": the UI shows it as unknown.
    """

    name: str
    fqdn: str | None = None
    build: str | None = None
    admin_display_version: str | None = None
    org_enabled: bool | None = None
    server_enabled: bool | None = None
    service: ServiceState | None = None
    applied: tuple[str, ...] = ()
    blocked: tuple[str, ...] = ()
    applied_time: datetime | None = None
    data_collection: bool | None = None
    proxy: str | None = None
    proxy_bypass: tuple[str, ...] = ()
    mitigations: tuple[Mitigation, ...] = ()
    artifacts: tuple[Artifact, ...] = ()
    events: tuple[EmEvent, ...] = ()
    backups: tuple[Backup, ...] = ()
    read_time: datetime

    @field_validator("applied_time", "read_time")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _as_utc(value)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def em_enabled(self) -> bool | None:
        """Effective EM: on only when both the org and the server switch are on."""
        if self.org_enabled is False or self.server_enabled is False:
            return False
        if self.org_enabled is None or self.server_enabled is None:
            return None
        return True

    @computed_field  # type: ignore[prop-decorator]
    @property
    def em_off_at(self) -> tuple[ActionScope, ...]:
        """Which switches are off (org first), so the UI can say *where* EM is disabled."""
        off: list[ActionScope] = []
        if self.org_enabled is False:
            off.append(ActionScope.ORG)
        if self.server_enabled is False:
            off.append(ActionScope.SERVER)
        return tuple(off)

    def is_blocked(self, mitigation_id: str) -> bool:
        """Whether this server's block list covers ``mitigation_id``."""
        return is_blocked(mitigation_id, self.blocked)


def same_reading(a: ServerState | None, b: ServerState | None) -> bool:
    """Whether two snapshots say the same but for when they were read: a refresh that found nothing
    new makes a new (equal) state, and what the screens made from the old one still holds."""
    if a is b:
        return True
    if a is None or b is None:
        return False
    mine, theirs = a.__dict__, b.__dict__
    return all(value == theirs[name] for name, value in mine.items() if name != "read_time")


# --------------------------------------------------------------------------- failures


class ServerFailure(_Frozen):
    """Why one server could not be read or changed.

    ``message`` is the sentence an admin reads ("the session has no credentials for Active
    Directory: use CredSSP or Kerberos delegation"); ``detail`` and ``raw_output`` are for the
    detail view and the command log.
    """

    kind: FailureKind
    message: str
    detail: str = ""
    raw_output: str | None = None


# --------------------------------------------------------------------------- actions

_NEEDS_IDS = {ActionKind.BLOCK, ActionKind.UNBLOCK, ActionKind.DELETE}
_ORG_CAPABLE = {ActionKind.ENABLE, ActionKind.DISABLE}


class ActionRequest(_Frozen):
    """One change (or the OCS test) the operator asked for, on one or more servers.

    Validated on construction so an impossible request never reaches the script layer: block,
    unblock and delete need valid mitigation IDs; restore needs a backup ID (its format is checked
    by ``emconsole.remote.validate``, which owns it); only enable/disable may have organisation
    scope. ``also_block`` (delete only) keeps a deleted rule from coming back.
    """

    kind: ActionKind
    servers: tuple[str, ...]
    mitigation_ids: tuple[str, ...] = ()
    scope: ActionScope = ActionScope.SERVER
    backup_id: str | None = None
    also_block: bool = True

    @field_validator("mitigation_ids")
    @classmethod
    def _valid_ids(cls, ids: tuple[str, ...]) -> tuple[str, ...]:
        for mid in ids:
            if not MITIGATION_ID_RE.fullmatch(mid):  # match() would let a trailing newline through
                raise ValueError(f"mitigation ID {mid!r} is not valid (letters, digits, '.', '_', '-')")
        return ids

    @model_validator(mode="after")
    def _consistent(self) -> ActionRequest:
        if not self.servers:
            raise ValueError("an action needs at least one server")
        if self.kind in _NEEDS_IDS and not self.mitigation_ids:
            raise ValueError(f"{self.kind.value} needs at least one mitigation ID")
        if self.kind is ActionKind.RESTORE and self.backup_id is None:
            raise ValueError("restore needs a backup ID")
        if self.kind is not ActionKind.RESTORE and self.backup_id is not None:
            raise ValueError("only restore takes a backup ID")
        if self.scope is ActionScope.ORG and self.kind not in _ORG_CAPABLE:
            raise ValueError(f"{self.kind.value} cannot have organisation scope")
        return self


class ActionOutcome(_Frozen):
    """How an action ended on one server. ``backup`` is what a delete saved (kept by the audit)."""

    server: str
    kind: ActionKind
    status: OutcomeStatus
    detail: str = ""
    backup: dict[str, Any] | None = None
    duration: float = 0.0
    failure: ServerFailure | None = None
