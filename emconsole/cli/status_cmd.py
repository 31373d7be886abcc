"""``emconsole status``: the fleet's EM state, one row per server (or per server × mitigation)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from emconsole.cli import common
from emconsole.cli.render import TABLE_FORMATS, Table, write_json, write_table

if TYPE_CHECKING:
    from emconsole.cli.jsonout import ServerOut

HELP = "Show the EM state of the fleet: switches, service, OCS, applied and blocked mitigations, drift."
EPILOG = """\
exit codes: 0 every selected server was read, 1 some could not be read (their row says why),
            2 usage or configuration error

examples:
  emconsole status
  emconsole status --tag site=amsterdam --format csv > ams.csv
  emconsole status --server 'EX0*' --mitigations
  emconsole status --format json | jq '.servers[] | select(.em.effective == false) | .name'

JSON: schema "emconsole.status" version 1 (docs/json-schema.md); --mitigations only changes the
table, CSV and Markdown shapes (JSON always nests mitigations per server).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_selection(parser)
    common.add_format(parser, TABLE_FORMATS)
    parser.add_argument("-m", "--mitigations", action="store_true",
                        help="one row per server and mitigation instead of one per server")


def em_text(srv: ServerOut) -> str:
    if srv.em is None or (srv.em.effective is None and not srv.em.off_at):
        return "?"
    if srv.em.effective:
        return "on"
    return "off (" + "+".join(srv.em.off_at) + ")"


def service_text(srv: ServerOut) -> str:
    if srv.service is None:
        return "?" if srv.em is None else "missing"
    svc = srv.service
    healthy = svc.status == "Running" and svc.start_type == "Automatic"
    return svc.status if healthy else f"{svc.status}/{svc.start_type}"


def ocs_text(srv: ServerOut) -> str:
    return {True: "ok", False: "unreachable", None: "?"}[srv.ocs_reachable]


def server_table(servers: list[ServerOut]) -> Table:
    table = Table(["SERVER", "BUILD", "EM", "SERVICE", "OCS", "APPLIED", "BLOCKED", "DRIFT", "ERROR"])
    for s in servers:
        table.add(s.name, s.build_name or s.build or "?", em_text(s), service_text(s), ocs_text(s),
                  " ".join(s.applied) or "-", " ".join(s.blocked) or "-", len(s.drift) or "-",
                  s.error.message if s.error else "")
    return table


def mitigation_table(servers: list[ServerOut]) -> Table:
    table = Table(["SERVER", "MITIGATION", "KIND", "STATUS", "BLOCKED", "DESCRIPTION"])
    for s in servers:
        if s.error is not None:
            table.add(s.name, "?", "", "error", "", s.error.message)
        for m in s.mitigations:
            table.add(s.name, m.id, m.kind, m.raw_status or m.status, "yes" if m.blocked else "",
                      m.description)
    return table


@common.guarded()
def run(args: argparse.Namespace) -> int:
    from emconsole.cli.jsonout import StatusDoc, server_out

    config = common.load(args)
    names = [s.name for s in common.selected(args, config)]
    knowledge = config.knowledge()

    async def read() -> list[ServerOut]:
        async with common.engine_for(config, read_only=True) as engine:
            return [server_out(v, knowledge) for v in await common.refresh(engine, names)]

    servers = common.run_async(read())
    if args.format == "json":
        write_json(StatusDoc(servers=servers))
    else:
        write_table(mitigation_table(servers) if args.mitigations else server_table(servers), args.format)
    unread = [s.name for s in servers if not s.reachable]
    if unread:
        print(f"emconsole: {len(unread)} of {len(servers)} servers could not be read: {', '.join(unread)}",
              file=sys.stderr)
    return 1 if unread else 0
