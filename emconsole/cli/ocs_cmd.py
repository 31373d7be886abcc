"""``emconsole test-ocs``: Test-MitigationServiceConnectivity.ps1 on servers (read-only)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from emconsole.cli import common
from emconsole.cli.render import TABLE_FORMATS, Table, write_json, write_table

if TYPE_CHECKING:
    from emconsole.engine import OcsResult

HELP = ("Test whether servers reach the Office Config Service (Test-MitigationServiceConnectivity.ps1). "
        "Read-only: allowed in read-only mode, no confirmation, not audited (command log only).")
EPILOG = """\
exit codes: 0 every selected server reached OCS, 1 some did not (or could not be asked),
            2 usage or configuration error

examples:
  emconsole test-ocs
  emconsole test-ocs --server EX01 --format json
  emconsole test-ocs --tag site=dublin --format csv
"""

WORDS = {True: "reachable", False: "unreachable", None: "error"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_selection(parser)
    common.add_format(parser, TABLE_FORMATS)


@common.guarded()
def run(args: argparse.Namespace) -> int:
    from emconsole.cli.jsonout import OcsDoc, OcsOut, error_out

    config = common.load(args)
    names = [s.name for s in common.selected(args, config)]

    async def test() -> list[OcsResult]:
        async with common.engine_for(config, read_only=True) as engine:
            progress = common.Progress(len(names), "test")
            results = []
            async for result in engine.test_ocs(names):
                progress.step(result.server, WORDS[result.ok])
                results.append(result)
            order = {n: i for i, n in enumerate(names)}
            return sorted(results, key=lambda r: order[r.server])

    results = common.run_async(test())
    if args.format == "json":
        write_json(OcsDoc(results=[
            OcsOut(server=r.server, reachable=r.ok, message=r.message, error=error_out(r.failure))
            for r in results]))
    else:
        table = Table(["SERVER", "OCS", "MESSAGE"])
        for r in results:
            table.add(r.server, WORDS[r.ok], r.message)
        write_table(table, args.format)
    return 0 if all(r.ok for r in results) else 1
