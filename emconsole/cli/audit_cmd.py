"""``emconsole audit``: the audit log of changes, one row per change, "outcome unknown" included."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from emconsole.cli import common
from emconsole.cli.render import TABLE_FORMATS, Table, write_json, write_table

if TYPE_CHECKING:
    from emconsole.audit import AuditLog
    from emconsole.cli.jsonout import AuditEntryOut

HELP = "Show the audit log: every change (intent and result), who, where, what, and how it ended."
EPILOG = """\
"outcome unknown": the change was sent (or about to be) but its result was never recorded — the
console was killed or cancelled mid-change. Check that server's state ('emconsole status').
A bulk change records every server's intent before the first is sent, so after a crash the servers
it never reached are listed too. "not sent": cancelled while it waited, before it was sent.

exit codes: 0 listed (outcome-unknown entries included), 2 usage or configuration error

examples:
  emconsole audit
  emconsole audit --since 24h
  emconsole audit --since 2026-08-01 --format csv > changes.csv
  emconsole audit --unknown --format json
"""

UNKNOWN = "outcome unknown"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_since(parser, None)
    parser.add_argument("--unknown", action="store_true", help="only changes whose outcome is unknown")
    common.add_format(parser, TABLE_FORMATS)


def _time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None


def audit_entries(log: AuditLog, since: datetime | None = None) -> list[AuditEntryOut]:
    """One entry per change, oldest first: each intent with its result ("outcome unknown" without)."""
    from emconsole.cli.jsonout import AuditEntryOut

    records = log.records()
    unknown = {u.intent_id for u in log.unknown_outcomes()}
    results: dict[str, dict[str, Any]] = {}
    for rec in records:
        if rec["kind"] == "result":
            results[str(rec.get("id", ""))] = rec
    out = []
    for rec in records:
        if rec["kind"] != "intent":
            continue
        when = _time(str(rec.get("time", "")))
        if since is not None and (when is None or when < since):
            continue
        rid = str(rec.get("id", ""))
        res = results.get(rid)
        raw_details = rec.get("details")
        details: dict[str, Any] = raw_details if isinstance(raw_details, dict) else {}
        backups = [str(b.get("backup_id") or b.get("id") or "") for b in (res or {}).get("backups") or []
                   if isinstance(b, dict)]
        out.append(AuditEntryOut(
            id=rid, time=str(rec.get("time", "")), operator=str(rec.get("operator", "")),
            target=str(rec.get("target", "")), action=str(rec.get("action", "")),
            mitigation_ids=[str(i) for i in rec.get("mitigation_ids") or []],
            outcome=UNKNOWN if rid in unknown or res is None else str(res.get("outcome", "")),
            finished=str(res["time"]) if res and res.get("time") else None,
            duration_s=float(res["duration_s"]) if res and isinstance(res.get("duration_s"), (int, float))
            else None,
            detail=str((res or {}).get("detail", "")), summary=str(details.get("summary", "")),
            backups=[b for b in backups if b] or ([str(details["backup_id"])] if details.get("backup_id")
                                                  and res is None else []),
        ))
    return out


def audit_table(entries: list[AuditEntryOut]) -> Table:
    table = Table(["TIME", "OPERATOR", "SERVER", "ACTION", "MITIGATIONS", "OUTCOME", "DETAIL", "BACKUP"])
    for e in entries:
        table.add(e.time[:19].replace("T", " "), e.operator, e.target, e.action, " ".join(e.mitigation_ids),
                  e.outcome.replace("_", " "), e.detail or e.summary, " ".join(e.backups))
    return table


def audit_log(args: argparse.Namespace) -> AuditLog:
    """The config's audit log; with no config file at all, the default one (nothing to configure)."""
    from emconsole.audit import AuditLog
    from emconsole.config import find_config

    if find_config(getattr(args, "config", None)) is None:
        return AuditLog()
    return AuditLog(common.load(args).audit_path)


@common.guarded()
def run(args: argparse.Namespace) -> int:
    from emconsole.cli.jsonout import AuditDoc

    log = audit_log(args)
    since = common.parse_since(args.since)
    entries = audit_entries(log, since)
    if args.unknown:
        entries = [e for e in entries if e.outcome == UNKNOWN]
    unknown = sum(e.outcome == UNKNOWN for e in entries)
    if args.format == "json":
        write_json(AuditDoc(since=since, path=str(log.path), entries=entries, unknown_outcomes=unknown))
    else:
        write_table(audit_table(entries), args.format)
    if unknown:
        print(f"emconsole: {unknown} change(s) with outcome unknown: check those servers", file=sys.stderr)
    return 0
