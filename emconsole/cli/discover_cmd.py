"""``emconsole discover --seed SERVER``: the Mailbox servers the organisation knows, as config entries."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from emconsole.cli import common
from emconsole.cli.render import Table, clean, write_json, write_table

if TYPE_CHECKING:
    from emconsole.cli.jsonout import DiscoveredOut
    from emconsole.config import Config

HELP = ("Ask one configured server (the seed) for every Exchange server of the organisation "
        "(Get-ExchangeServer) and print the Mailbox servers missing from the config as [[servers]] entries.")
EPILOG = """\
The seed must be in the config (one [[servers]] entry and [defaults] are enough to start); the
new entries inherit [defaults] (transport, username, ...). Edge servers have no EM service and are
left out; servers already configured are listed as comments. Read-only.

exit codes: 0 listed, 1 the seed could not be asked, 2 usage or configuration error

examples:
  emconsole discover --seed EX01 >> ~/.config/emconsole/config.toml
  emconsole discover --seed EX01 --format table
  emconsole discover --seed EX01 --format json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", required=True, metavar="SERVER", help="a configured server to ask")
    common.add_format(parser, ("toml", "table", "json", "csv"), default="toml")


def _site(text: str) -> str:
    """``contoso.local/Configuration/Sites/Amsterdam`` -> ``Amsterdam``."""
    return text.rstrip("/").rsplit("/", 1)[-1]


def config_entries(found: list[DiscoveredOut]) -> str:
    """TOML ``[[servers]]`` blocks for the new Mailbox servers; configured ones as comments."""
    from emconsole.remote import validate

    lines = ["# Exchange Mailbox servers found by 'emconsole discover' (settings come from [defaults])."]
    for s in found:
        if s.in_config:
            lines.append(f"# {clean(s.name)}: already in the configuration")
            continue
        try:
            name, host = validate.identity(s.name), validate.host(s.fqdn or s.name)
        except validate.InvalidInput as exc:
            lines.append(f"# {clean(s.name)}: skipped, {clean(str(exc))}")
            continue
        tags = f"tags = {{ site = {json.dumps(s.site)} }}" if s.site else None
        lines += ["", "[[servers]]", f"name = {json.dumps(name)}", f"host = {json.dumps(host)}"]
        if tags:
            lines.append(tags)
        lines.append(f"# {clean(s.build_name or s.build or 'build unknown')}; roles {clean(s.roles) or '?'}")
    return "\n".join(lines) + "\n"


@common.guarded()
def run(args: argparse.Namespace) -> int:
    from emconsole.backends.base import BackendFailure
    from emconsole.cli.jsonout import DiscoverDoc, DiscoveredOut
    from emconsole.knowledge import build_from_admin_display_version

    config: Config = common.load(args)
    seed = config.server(args.seed)
    if seed is None:
        raise common.CliError(f"the seed {args.seed!r} is not in the configuration: add it as a [[servers]] "
                              "entry first")
    knowledge = config.knowledge()

    async def ask() -> list[DiscoveredOut]:
        async with common.engine_for(config, read_only=True) as engine:
            rows = await engine.discover(seed.name)
        out = []
        for row in rows:
            if row.edge or row.mailbox is False:
                continue
            build = build_from_admin_display_version(row.version)
            out.append(DiscoveredOut(
                name=row.name, fqdn=row.fqdn, build=build,
                build_name=knowledge.build_info(build).name if build else None, site=_site(row.site),
                roles=row.roles, in_config=config.server(row.name) is not None))
        return out

    try:
        found = common.run_async(ask())
    except BackendFailure as exc:
        common.fail(f"{seed.name}: {exc.failure.message}")
        return 1
    new = sum(not s.in_config for s in found)
    if args.format == "json":
        write_json(DiscoverDoc(seed=seed.name, servers=found, config=config_entries(found)))
    elif args.format == "toml":
        sys.stdout.write(config_entries(found))
    else:
        table = Table(["NAME", "FQDN", "BUILD", "SITE", "ROLES", "IN CONFIG"])
        for s in found:
            table.add(s.name, s.fqdn, s.build_name or s.build or "?", s.site, s.roles,
                      "yes" if s.in_config else "")
        write_table(table, args.format)
    print(f"{len(found)} Mailbox server(s), {new} not in the configuration", file=sys.stderr)
    return 0
