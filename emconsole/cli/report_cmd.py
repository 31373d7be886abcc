"""``emconsole report``: a point-in-time report of the fleet for a change ticket or a post-incident
review — per server state, mitigations, drift, recent EM events, exposure, and the audit records of
a chosen period. Markdown, HTML (one self-contained file) or JSON."""

from __future__ import annotations

import argparse
import html
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from emconsole.cli import common
from emconsole.cli.render import Table, clean, html_table, markdown, md_text, write_json

if TYPE_CHECKING:
    from emconsole.cli.jsonout import AuditEntryOut, ExposureOut, ReportDoc, ServerOut

HELP = ("A point-in-time report of the fleet: state per server, mitigations, drift, recent EM events, "
        "exposure, and the audit records of a period.")
EPILOG = """\
exit codes: 0 report written, 1 written but some servers could not be read (the report says so),
            2 usage or configuration error (nothing written)

examples:
  emconsole report -o em-report.md
  emconsole report --format html -o /srv/reports/em-$(date +%F).html --since 7d
  emconsole report --format json --since 2026-08-01 --tag site=amsterdam > report.json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_selection(parser)
    common.add_format(parser, ("markdown", "html", "json"), default="markdown")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here (default: stdout)")
    common.add_since(parser, "7d")
    parser.add_argument("--events", type=int, default=10, metavar="N",
                        help="newest EM events per server (default 10)")


# --------------------------------------------------------------------------- a tiny document model


@dataclass
class Section:
    """A heading with paragraphs, bullet lists and tables, rendered as Markdown or HTML."""

    title: str
    level: int = 2
    parts: list[str | Table | list[str]] = field(default_factory=list)


def to_markdown(title: str, sections: Sequence[Section]) -> str:
    out = [f"# {md_text(title)}", ""]
    for sec in sections:
        out += ["#" * sec.level + " " + md_text(sec.title), ""]
        for part in sec.parts:
            if isinstance(part, Table):
                out.append(markdown(part) if part.rows else "_none_\n")
            elif isinstance(part, list):
                out += [f"- {md_text(item)}" for item in part] or ["_none_"]
                out.append("")
            else:
                out += [md_text(part), ""]
    return "\n".join(out).rstrip() + "\n"


_CSS = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #bbb;padding:.2em .5em;"
        "text-align:left;vertical-align:top}th{background:#eee}")


def to_html(title: str, sections: Sequence[Section]) -> str:
    esc = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{esc(title)}</title>",
           f"<style>{_CSS}</style></head><body>", f"<h1>{esc(title)}</h1>"]
    for sec in sections:
        out.append(f"<h{sec.level}>{esc(clean(sec.title))}</h{sec.level}>")
        for part in sec.parts:
            if isinstance(part, Table):
                out.append(html_table(part) if part.rows else "<p><em>none</em></p>")
            elif isinstance(part, list):
                items = "".join(f"<li>{esc(clean(i))}</li>" for i in part)
                out.append(f"<ul>{items}</ul>" if part else "<p><em>none</em></p>")
            else:
                out.append(f"<p>{esc(clean(part))}</p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- content


def sections(doc: ReportDoc, config_path: str) -> list[Section]:
    from emconsole.cli.audit_cmd import audit_table
    from emconsole.cli.status_cmd import em_text, ocs_text, server_table, service_text

    servers, exposures, audit = doc.servers, doc.exposures, doc.audit
    unread = [s.name for s in servers if not s.reachable]
    counts = {
        "servers": len(servers), "could not be read": len(unread),
        "EM off": sum(1 for s in servers if s.em and s.em.effective is False),
        "EM service not running": sum(1 for s in servers if s.em and (s.service is None
                                                                       or s.service.status != "Running")),
        "server × CVE exposed": sum(e.state == "exposed" for e in exposures),
        "protected but at risk": sum(e.at_risk for e in exposures),
        "exposure unknown": sum(e.state == "unknown" for e in exposures),
        "servers with leftovers": len({e.server for e in exposures if e.leftovers}),
        "drift items": sum(len(s.drift) for s in servers),
        "changes in the period": len(audit),
        "changes with outcome unknown": sum(a.outcome == "outcome unknown" for a in audit),
    }
    since = doc.since.strftime("%Y-%m-%d %H:%M UTC") if doc.since else "the beginning of the log"
    summary = Section("Summary", parts=[
        f"Generated {doc.generated:%Y-%m-%d %H:%M:%S} UTC from {config_path}; audit records since {since}.",
        [f"{k}: {v}" for k, v in counts.items()],
    ])
    if unread:
        summary.parts.append(f"Could not be read (their state below is unknown): {', '.join(unread)}.")
    out = [summary, Section("Exposure", parts=[exposure_table(exposures)]),
           Section("Fleet", parts=[server_table(servers)])]
    for s in servers:
        sec = Section(f"Server {s.name}", parts=[])
        if s.error is not None:
            sec.parts.append(f"Could not be read: {s.error.message} ({s.error.kind}).")
        facts = [f"build: {s.build_name or s.build or '?'}", f"EM: {em_text(s)}",
                 f"service: {service_text(s)}", f"OCS: {ocs_text(s)}",
                 f"applied: {' '.join(s.applied) or '-'}", f"blocked: {' '.join(s.blocked) or '-'}",
                 f"backups on the server: {' '.join(s.backups) or '-'}"]
        sec.parts.append(facts)
        sec.parts.append(mitigations_table(s))
        sec.parts.append("Drift:")
        sec.parts.append([f"{d.mitigation_id}: {d.what}" for d in s.drift])
        sec.parts.append("Recent EM events:")
        sec.parts.append(events_table(s))
        out.append(sec)
    out.append(Section("Audit records", parts=[audit_table(audit)]))
    return out


def exposure_table(exposures: Sequence[ExposureOut]) -> Table:
    table = Table(["SERVER", "CVE", "STATE", "WHY", "FIX"])
    for e in exposures:
        state = "protected, at risk" if e.at_risk else e.state
        why = "; ".join(r.text for r in e.reasons)
        if e.leftovers:
            why = "leftovers: " + "; ".join(f"{lo.mitigation_id} ({', '.join(lo.artifacts)})"
                                            for lo in e.leftovers)
        table.add(e.server, e.cve, state, why, e.fix + (f" {e.note}" if e.note else ""))
    return table


def mitigations_table(s: ServerOut) -> Table:
    from emconsole.models import same_base_id

    table = Table(["MITIGATION", "KIND", "STATUS", "BLOCKED", "ARTIFACTS"])
    for m in s.mitigations:
        arts = [a.name for a in s.artifacts if a.mitigation_id and same_base_id(a.mitigation_id, m.id)]
        table.add(m.id, m.kind, m.raw_status or m.status, "yes" if m.blocked else "", ", ".join(arts))
    return table


def events_table(s: ServerOut) -> Table:
    table = Table(["TIME", "ID", "LEVEL", "MESSAGE"])
    for e in s.events or []:
        table.add(f"{e.time:%Y-%m-%d %H:%M:%S}", e.id, e.level, e.message)
    return table


# --------------------------------------------------------------------------- run


@common.guarded()
def run(args: argparse.Namespace) -> int:
    from emconsole.audit import AuditLog
    from emconsole.cli.audit_cmd import audit_entries
    from emconsole.cli.jsonout import ReportDoc, exposure_out, server_out
    from emconsole.config import find_config
    from emconsole.exposure import assess_fleet, worst_first

    if args.events < 0:
        raise common.CliError("--events must be 0 or more")
    since = common.parse_since(args.since)
    config = common.load(args)
    knowledge = config.knowledge()
    names = [s.name for s in common.selected(args, config)]

    async def read() -> tuple[list[ServerOut], list[ExposureOut]]:
        async with common.engine_for(config, read_only=True) as engine:
            views = await common.refresh(engine, names)
            exposures = worst_first(assess_fleet(views, knowledge))
            return ([server_out(v, knowledge, events=args.events) for v in views],
                    [exposure_out(e) for e in exposures])

    servers, exposures = common.run_async(read())
    audit: list[AuditEntryOut] = audit_entries(AuditLog(config.audit_path), since)
    doc = ReportDoc(since=since, servers=servers, exposures=exposures, audit=audit,
                    generated=datetime.now(timezone.utc))
    location = find_config(getattr(args, "config", None))
    title = "Exchange Emergency Mitigation report"
    if args.format == "json":
        from io import StringIO

        buf = StringIO()
        write_json(doc, buf)
        text = buf.getvalue()
    else:
        parts = sections(doc, str(location.path) if location else "?")
        text = to_markdown(title, parts) if args.format == "markdown" else to_html(title, parts)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"report written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0 if all(s.reachable for s in servers) else 1
