"""``emconsole exposure``: per server and CVE, fixed / protected / exposed / unknown, and why."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from emconsole.cli import common
from emconsole.cli.render import TABLE_FORMATS, Table, write_json, write_table

if TYPE_CHECKING:
    from emconsole.exposure import Exposure
    from emconsole.knowledge import Knowledge

HELP = "Which servers are fixed, protected by a mitigation, exposed or unknown for each CVE, and why."
EPILOG = """\
states: fixed (the build has the update; "leftovers" = mitigation artifacts still on it),
        protected (the mitigation is in place; "at risk" when EM would not put it back),
        exposed (with the reason), unknown (build or fix not known, server not read)

exit codes: 0 every selected server was read, 1 some could not be read, 2 usage/config error
            (use 'emconsole check' for monitoring verdicts)

examples:
  emconsole exposure
  emconsole exposure --cve CVE-2026-42897 --format csv
  emconsole exposure --cve M2 --tag site=amsterdam
  emconsole exposure --format json | jq '.exposures[] | select(.state == "exposed") | .server'
  emconsole delete --leftovers --all --dry-run      # what removing the leftovers would do
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_selection(parser)
    parser.add_argument("--cve", metavar="CVE", help="only this CVE (a mitigation ID such as M2 works too)")
    common.add_format(parser, TABLE_FORMATS)


def resolve_cve(text: str | None, knowledge: Knowledge) -> str | None:
    """A CVE the catalogue knows, given as the CVE or one of its mitigation IDs."""
    if not text:
        return None
    if knowledge.catalogue.by_cve(text):
        return knowledge.catalogue.by_cve(text)[0].cve
    entry = knowledge.catalogue.get(text)
    if entry is not None and entry.cve:
        return entry.cve
    known = ", ".join(knowledge.catalogue.cves())
    raise common.CliError(f"--cve {text!r} is not in the catalogue (known: {known})")


def exposure_table(exposures: list[Exposure]) -> Table:
    table = Table(["SERVER", "CVE", "MITIGATION", "STATE", "WHY", "BUILD"])
    for e in exposures:
        build = e.build_name or e.build or "?"
        table.add(e.server, e.cve, ", ".join(e.mitigation_ids), e.label, e.why, build)
    return table


@common.guarded()
def run(args: argparse.Namespace) -> int:
    from emconsole.cli.jsonout import ExposureDoc, exposure_out
    from emconsole.exposure import assess_fleet, worst_first

    config = common.load(args)
    knowledge = config.knowledge()
    cve = resolve_cve(args.cve, knowledge)
    names = [s.name for s in common.selected(args, config)]

    async def read() -> list[Exposure]:
        async with common.engine_for(config, read_only=True) as engine:
            views = await common.refresh(engine, names)
            return worst_first(assess_fleet(views, knowledge, cve))

    exposures = common.run_async(read())
    if args.format == "json":
        write_json(ExposureDoc(exposures=[exposure_out(e) for e in exposures]))
    else:
        write_table(exposure_table(exposures), args.format)
    unread = sorted({e.server for e in exposures if e.reason_codes and e.reason_codes[0].value == "not_read"})
    if unread:
        print(f"emconsole: could not read {', '.join(unread)}: exposure unknown there", file=sys.stderr)
    return 1 if unread else 0
