"""``emconsole check``: a monitoring plugin (Nagios/Icinga conventions) over the whole fleet."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from emconsole.cli import common

HELP = "Monitoring check: one status line with perfdata, exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."
EPILOG = """\
findings and their default levels (the worst wins: CRITICAL > WARNING > UNKNOWN > OK):
  critical  unreachable (server not read), em_off (EM off at org or server), service_not_running,
            exposed (a CVE neither fixed nor mitigated)
  warning   blocked (a mitigation blocked where its CVE is not fixed), ocs_unreachable,
            obsolete (applied - listed by EM, artifacts present - on a build that has the fix),
            at_risk (mitigated, but EM would not put it back), leftover (artifacts on a fixed
            build that EM no longer lists); 'emconsole delete --leftovers' removes both
  unknown   exposure_unknown (build or fix not known)
Levels, servers where EM may be off and thresholds also come from [check] in the config;
options win. A check that cannot run (bad config, no password) exits 3 UNKNOWN.

examples:
  emconsole check
  emconsole check --tag site=amsterdam -v
  emconsole check --level ocs_unreachable=ignore --level blocked=critical
  emconsole check --em-off-ok EX09 --critical-threshold 3
  emconsole check --format json

Icinga 2 / Nagios command:  emconsole check --config /etc/emconsole/config.toml
"""

UNKNOWN_EXIT = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_selection(parser)
    parser.add_argument("--cve", metavar="CVE", help="only consider exposure to this CVE (or mitigation ID)")
    parser.add_argument("--level", action="append", default=[], metavar="FINDING=LEVEL",
                        help="critical, warning, unknown or ignore for a finding; repeatable")
    parser.add_argument("--ignore", action="append", default=[], metavar="FINDING",
                        help="do not count this finding (same as --level FINDING=ignore); repeatable")
    parser.add_argument("--em-off-ok", action="append", default=[], metavar="NAME",
                        help="a server where EM is meant to be off; repeatable")
    parser.add_argument("-c", "--critical-threshold", type=int, metavar="N",
                        help="CRITICAL only from N servers with a critical finding (fewer: WARNING)")
    parser.add_argument("-w", "--warning-threshold", type=int, metavar="N",
                        help="WARNING only from N servers with a warning finding (fewer: OK)")
    parser.add_argument("-v", "--verbose", action="store_true", help="one more line per finding")
    common.add_format(parser, ("nagios", "json"), default="nagios")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """The command line's part of CheckSettings (only what was given, so config fills the rest)."""
    from emconsole.monitoring import FindingCode, Level

    levels: dict[str, str] = {}
    for item in args.level:
        code, sep, level = item.partition("=")
        if not sep:
            raise common.CliError(f"--level takes FINDING=LEVEL, not {item!r}")
        levels[code.strip()] = level.strip()
    levels |= {code.strip(): "ignore" for code in args.ignore}
    known_codes = {c.value for c in FindingCode}
    for code, level in levels.items():
        if code not in known_codes:
            raise common.CliError(f"unknown finding {code!r} (known: {', '.join(sorted(known_codes))})")
        if level not in {lv.value for lv in Level} - {"ok"}:
            raise common.CliError(f"level {level!r} for {code}: use critical, warning, unknown or ignore")
    given: dict[str, Any] = {"levels": levels, "em_off_ok": tuple(args.em_off_ok)}
    for key in ("critical_threshold", "warning_threshold"):
        value = getattr(args, key)
        if value is not None:
            if value < 1:
                raise common.CliError(f"--{key.replace('_', '-')} must be 1 or more")
            given[key] = value
    return given


def _unknown(message: str) -> None:
    print(f"EMCONSOLE UNKNOWN - {message}")


@common.guarded(UNKNOWN_EXIT, on_error=_unknown)
def run(args: argparse.Namespace) -> int:
    from emconsole.cli.exposure_cmd import resolve_cve
    from emconsole.cli.jsonout import CheckDoc, FindingOut
    from emconsole.cli.render import write_json
    from emconsole.monitoring import CheckSettings, Verdict, findings, verdict

    given = _settings(args)
    config = common.load(args)
    settings = config.check.merged(CheckSettings.model_validate(given))
    knowledge = config.knowledge()
    cve = resolve_cve(args.cve, knowledge)
    names = [s.name for s in common.selected(args, config)]

    async def assess() -> Verdict:
        async with common.engine_for(config, read_only=True) as engine:
            views = await common.refresh(engine, names)
            return verdict(findings(views, knowledge, settings, cve), len(views), settings)

    result = common.run_async(assess())
    if args.format == "json":
        write_json(CheckDoc(status=result.level.value.upper(), exit_code=result.exit_code,  # type: ignore[arg-type]
                            summary=result.summary, perfdata=result.perfdata, servers=result.servers,
                            findings=[FindingOut(**f.model_dump(mode="json")) for f in result.findings]))
        return result.exit_code
    print(f"{result.summary} | {result.perfdata}")
    if args.verbose:
        for f in result.findings:
            print(f"[{f.level.value.upper()}] {f.server}: {f.text}")
    sys.stdout.flush()
    return result.exit_code
