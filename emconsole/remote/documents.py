"""The JSON documents the remote scripts print, and the defensive parser that finds them.

Windows PowerShell 5.1 is an unreliable JSON writer (a one-item array piped to ConvertTo-Json
loses its brackets, a missing property is ``null``, a banner may precede the document), so every
model here accepts ``null`` for a string (as ``""``), a lone object or string where a list belongs,
and ignores fields it does not know. Status strings are kept raw: ``models`` interprets them.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Optional, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError


class OutputNotUnderstood(Exception):
    """A script's output holds no complete document of the expected kind; ``raw`` keeps it all."""

    def __init__(self, reason: str, raw: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw


def _to_str(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _to_list(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, list):
        return [v for v in value if v is not None]
    return [value]


def _to_int(value: Any) -> Any:
    if value in (None, ""):
        return None
    return value


T = TypeVar("T")

Str = Annotated[str, BeforeValidator(_to_str)]
ListOf = Annotated[list[T], BeforeValidator(_to_list)]  # null -> [], a lone item -> [item]
StrList = ListOf[Str]
OptInt = Annotated[Optional[int], BeforeValidator(_to_int)]  # noqa: UP045 (runtime alias)


class _Doc(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Problem(_Doc):
    """A step that failed without stopping the script (one site unreadable, one service missing)."""

    step: Str = ""
    error_id: Str = ""
    error_type: Str = ""
    message: Str = ""


class Envelope(_Doc):
    """Every document: schema, operation, a code ('' when the script did its job) and the error."""

    schema_: int = Field(alias="schema")
    operation: Str
    code: Str = ""
    error_id: Str = ""
    error_type: Str = ""
    error: Str = ""
    computer: Str = ""
    time: Str = ""
    problems: ListOf[Problem] = []

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# --------------------------------------------------------------------------- status


class ExchangeServerDoc(_Doc):
    name: Str = ""
    fqdn: Str = ""
    version: Str = ""
    enabled: bool | None = None
    data_collection: bool | None = None
    proxy: Str = ""
    applied: StrList = []
    blocked: StrList = []
    applied_time: Str = ""


class MitigationRowDoc(_Doc):
    """One Get-Mitigations.ps1 row, strings as the script printed them (Status is UNCONFIRMED)."""

    id: Str = ""
    type: Str = ""
    description: Str = ""
    status: Str = ""
    server: Str = ""


class ServiceDoc(_Doc):
    name: Str = ""
    present: bool = False
    state: Str = ""
    start_mode: Str = ""
    process_id: OptInt = None


class AppPoolDoc(_Doc):
    name: Str = ""
    present: bool = False
    state: Str = ""


class MatchDoc(_Doc):
    url: Str = ""
    serverVariable: Str = ""
    pattern: Str = ""
    filterByTags: Str = ""
    preCondition: Str = ""


class ConditionEntryDoc(_Doc):
    input: Str = ""
    pattern: Str = ""
    negate: Str = ""


class ConditionsDoc(_Doc):
    logicalGrouping: Str = ""
    entries: ListOf[ConditionEntryDoc] = []


class ActionDoc(_Doc):
    type: Str = ""
    value: Str = ""
    statusCode: Str = ""


class RewriteDoc(_Doc):
    """An ``EEMS *`` rule or precondition with the IIS attribute names, as backed up and restored."""

    kind: Str = ""  # rule | precondition
    direction: Str = ""  # inbound | outbound
    pspath: Str = ""
    filter: Str = ""
    element: Str = ""
    name: Str = ""
    location: Str = ""
    item_xpath: Str = ""
    stopProcessing: Str = ""
    patternSyntax: Str = ""
    preCondition: Str = ""
    match: MatchDoc = MatchDoc()
    conditions: ConditionsDoc = ConditionsDoc()
    action: ActionDoc = ActionDoc()


class EventDoc(_Doc):
    id: int
    time: Str = ""
    level: Str = ""
    provider: Str = ""
    message: Str = ""
    record_id: OptInt = None


class BackupFileDoc(_Doc):
    name: Str = ""
    size: OptInt = None
    modified: Str = ""


class StatusResult(_Doc):
    server: ExchangeServerDoc | None = None
    org_enabled: bool | None = None
    mitigations: ListOf[MitigationRowDoc] = []
    mitigations_output: StrList = []
    services: ListOf[ServiceDoc] = []
    app_pools: ListOf[AppPoolDoc] = []
    artifacts: ListOf[RewriteDoc] = []
    events: ListOf[EventDoc] = []
    backups: ListOf[BackupFileDoc] = []


class StatusDocument(Envelope):
    result: StatusResult | None = None


# --------------------------------------------------------------------------- changes


class BlockingDoc(_Doc):
    """The compare-and-set of MitigationsBlocked: what was expected, found, written and read back."""

    mode: Str = ""
    expected: StrList = []
    before: StrList = []
    wanted: StrList = []
    after: StrList = []
    verified: bool = False


class BlockDocument(Envelope):
    result: BlockingDoc | None = None


class ReapplyResult(_Doc):
    service: Str = ""
    old_process_id: OptInt = None
    new_process_id: OptInt = None
    state: Str = ""
    start_mode: Str = ""


class ReapplyDocument(Envelope):
    result: ReapplyResult | None = None


class BackupDoc(_Doc):
    """The backup file's content (``$env:ProgramData\\emconsole\\backups\\<id>.json``), kept by the audit."""

    backup_id: Str = ""
    computer: Str = ""
    created: Str = ""
    ids: StrList = []
    artifacts: ListOf[RewriteDoc] = []
    services: ListOf[ServiceDoc] = []
    app_pools: ListOf[AppPoolDoc] = []
    blocked_before: StrList = []


class DeleteResult(_Doc):
    backup_id: Str = ""
    backup_file: Str = ""
    backup: BackupDoc | None = None
    removed: StrList = []
    remaining: StrList = []
    services: ListOf[ServiceDoc] = []
    app_pools: ListOf[AppPoolDoc] = []
    blocking: BlockingDoc | None = None


class DeleteDocument(Envelope):
    result: DeleteResult | None = None


class RestoreResult(_Doc):
    backup_id: Str = ""
    backup_file: Str = ""
    ids: StrList = []
    restored: StrList = []
    already_present: StrList = []
    missing: StrList = []
    services: ListOf[ServiceDoc] = []
    app_pools: ListOf[AppPoolDoc] = []


class RestoreDocument(Envelope):
    result: RestoreResult | None = None


class SwitchResult(_Doc):
    scope: Str = ""
    enabled: bool | None = None
    before: bool | None = None
    after: bool | None = None
    verified: bool = False


class SwitchDocument(Envelope):
    result: SwitchResult | None = None


class OcsResult(_Doc):
    lines: StrList = []

    def field(self, label: str) -> str:
        """The text after ``Result:`` / ``Message:`` on the first such line ('' when absent)."""
        for line in self.lines:
            head, sep, tail = line.partition(":")
            if sep and head.strip().casefold() == label.casefold():
                return tail.strip()
        return ""


class OcsDocument(Envelope):
    result: OcsResult | None = None


class DiscoveredServerDoc(_Doc):
    """One Get-ExchangeServer object, as the discovery script normalises it."""

    name: Str = ""
    fqdn: Str = ""
    version: Str = ""
    roles: Str = ""
    site: Str = ""
    mailbox: bool | None = None
    edge: bool | None = None


class DiscoverResult(_Doc):
    servers: ListOf[DiscoveredServerDoc] = []


class DiscoverDocument(Envelope):
    result: DiscoverResult | None = None


# --------------------------------------------------------------------------- parsing

SCHEMAS: dict[str, tuple[int, type[Envelope]]] = {
    "status": (1, StatusDocument),
    "block": (1, BlockDocument),
    "unblock": (1, BlockDocument),
    "reapply": (1, ReapplyDocument),
    "delete": (1, DeleteDocument),
    "restore": (1, RestoreDocument),
    "set_enabled": (1, SwitchDocument),
    "test_ocs": (1, OcsDocument),
    "discover": (1, DiscoverDocument),
}
_START = re.compile(r'\{\s*"schema"\s*:')


def extract_document(stdout: str | bytes) -> dict[str, Any]:
    """The last complete ``{"schema": ...}`` object in the output (banners and trailing noise allowed)."""
    raw = stdout.decode("utf-8", errors="replace") if isinstance(stdout, bytes) else stdout
    text = raw.replace("\ufeff", "")
    decoder = json.JSONDecoder()
    starts = [m.start() for m in _START.finditer(text)]
    found: dict[str, Any] | None = None
    end = -1
    for start in starts:
        if start < end:
            continue  # inside a document already read (a backup carries its own "schema")
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            found = value
    if found is not None:
        return found
    reason = "no JSON document in the output" if not starts else "the JSON document is incomplete"
    raise OutputNotUnderstood(reason, raw)


def parse_document(stdout: str | bytes, operation: str) -> Envelope:
    """Parse the output of the ``operation`` script into its document model."""
    schema, model = SCHEMAS[operation]
    data = extract_document(stdout)
    raw = stdout.decode("utf-8", errors="replace") if isinstance(stdout, bytes) else stdout
    if data.get("schema") != schema:
        raise OutputNotUnderstood(f"schema {data.get('schema')!r}, expected {schema}", raw)
    if data.get("operation") != operation:
        raise OutputNotUnderstood(f"a {data.get('operation')!r} document, expected {operation!r}", raw)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise OutputNotUnderstood(
            f"the {operation} document does not fit: {exc.errors()[0]['msg']}", raw
        ) from exc


def parse_status(stdout: str | bytes) -> StatusDocument:
    doc = parse_document(stdout, "status")
    assert isinstance(doc, StatusDocument)
    return doc
