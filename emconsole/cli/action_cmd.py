"""``emconsole reapply|block|unblock|delete|restore|enable|disable``: one module for every change.

The same path as the console: read the servers, let the engine plan (exact PowerShell per server,
read-only refused there), show the plan, confirm (typing the number of servers from the bulk
threshold on), execute (audit intent -> run -> verify -> audit result), print each server's
outcome. ``--dry-run`` stops after the plan; ``--yes`` confirms for scripts.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from emconsole.cli import common
from emconsole.cli.render import Table, clean, is_terminal, write_json, write_table

if TYPE_CHECKING:
    from emconsole.cli.jsonout import ActionDoc
    from emconsole.engine import ActionPlan, FleetEngine
    from emconsole.models import ActionOutcome, ActionRequest, ServerFailure

#: Exit code when the operator did not confirm (nothing was changed).
NOT_CONFIRMED = 4

_EXIT_CODES = """\
exit codes: 0 done and verified on every server (or --dry-run), 1 some server not verified or
            failed, 2 usage/configuration error or read-only refusal, 4 not confirmed (nothing
            changed)"""

_COMMON_EXAMPLE_TAIL = """\
Every change is recorded in the audit log (intent before, result after; 'emconsole audit').
Read-only mode (--read-only or read_only = true) refuses it. --show-script prints the exact
PowerShell; the bulk threshold (bulk_confirm_threshold, default 3) asks for the number of servers
instead of y/N."""


@dataclass(frozen=True)
class ActionSpec:
    """What differs between the action commands: words, arguments, the request they build."""

    name: str
    help: str
    examples: str
    ids: str  # "required" | "optional" | "none"
    org: bool = False


SPECS = {
    "reapply": ActionSpec(
        name="reapply", ids="optional",
        help="Restart the EM service so it checks OCS and applies mitigations again (about 10 minutes "
             "after the start).",
        examples="emconsole reapply --server EX01\n  emconsole reapply --tag site=dublin --yes"),
    "block": ActionSpec(
        name="block", ids="required",
        help="Block mitigations: add the base and every known full ID to MitigationsBlocked "
             "(compare-and-set against the list just read). Blocking does not remove what is applied.",
        examples="emconsole block M2 --server EX01\n  emconsole block M2 --all --dry-run --show-script"),
    "unblock": ActionSpec(
        name="unblock", ids="required",
        help="Unblock mitigations: remove every form of their IDs from MitigationsBlocked; EM applies "
             "them at its next check.",
        examples="emconsole unblock M2 --server EX01 --yes"),
    "delete": ActionSpec(
        name="delete", ids="optional",
        help="Back up (on the server) and delete mitigations' artifacts: rewrite rules, service and "
             "app-pool changes; blocks them too unless --no-block. --leftovers deletes what is left over "
             "on fixed builds ('emconsole exposure').",
        examples="emconsole delete M2 --server EX01\n  emconsole delete --leftovers --all --dry-run\n"
                 "  emconsole delete --leftovers --cve CVE-2026-42897 --tag site=ams --yes"),
    "restore": ActionSpec(
        name="restore", ids="none",
        help="Restore what a delete removed, from its backup file on the server (the backup ID is in "
             "the delete's output and in 'emconsole audit').",
        examples="emconsole restore 20260803T090000Z-1a2b3c4d --server EX01"),
    "enable": ActionSpec(
        name="enable", ids="none", org=True,
        help="Switch EM on (MitigationsEnabled) on servers, or with --org for the organisation (run "
             "once, on the first reachable server).",
        examples="emconsole enable --server EX01\n  emconsole enable --org --yes"),
    "disable": ActionSpec(
        name="disable", ids="none", org=True,
        help="Switch EM off on servers, or with --org for the whole organisation.",
        examples="emconsole disable --server EX09 --yes\n  emconsole disable --org --dry-run"),
}


class ActionCommand:
    """The command module for one action (see ``emconsole.cli.main._load``)."""

    def __init__(self, spec: ActionSpec) -> None:
        self.spec = spec
        self.HELP = spec.help
        self.EPILOG = f"examples:\n  {spec.examples}\n\n{_EXIT_CODES}\n\n{_COMMON_EXAMPLE_TAIL}\n"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        spec = self.spec
        if spec.ids != "none":
            parser.add_argument("ids", nargs="+" if spec.ids == "required" else "*", metavar="MITIGATION",
                                help="mitigation IDs (M2, M2.1.0)")
        if spec.name == "restore":
            parser.add_argument("backup_id", metavar="BACKUP_ID", help="the backup a delete made")
        if spec.name == "delete":
            parser.add_argument("--leftovers", action="store_true",
                                help="delete the mitigation artifacts left on fixed builds")
            parser.add_argument("--cve", metavar="CVE", help="with --leftovers: only this CVE's")
            parser.add_argument("--no-block", action="store_true", help="do not also block what is deleted")
        if spec.org:
            parser.add_argument("--org", action="store_true",
                                help="the organisation switch (Set-OrganizationConfig), not the servers'")
        common.add_selection(parser, change=True, org=spec.org)
        parser.add_argument("-y", "--yes", action="store_true", help="do not ask: confirm (for scripts)")
        parser.add_argument("-n", "--dry-run", action="store_true", help="print the plan and stop")
        parser.add_argument("--show-script", action="store_true",
                            help="print the exact PowerShell per server")
        common.add_format(parser, ("text", "json"), default="text")
        common.add_read_only(parser)

    def run(self, args: argparse.Namespace) -> int:
        return common.guarded()(functools.partial(_run, self.spec))(args)


def for_command(name: str) -> ActionCommand:
    return ActionCommand(SPECS[name])


# --------------------------------------------------------------------------- requests


def _requests(spec: ActionSpec, args: argparse.Namespace, engine: FleetEngine,
              names: list[str]) -> list[ActionRequest]:
    from emconsole.models import ActionKind, ActionRequest, ActionScope

    kind = ActionKind(spec.name)
    ids = tuple(getattr(args, "ids", ()) or ())
    if spec.name == "delete" and args.leftovers:
        from emconsole.cli.exposure_cmd import resolve_cve
        from emconsole.exposure import assess_fleet, leftover_deletions

        if ids:
            raise common.CliError("give mitigation IDs or --leftovers, not both")
        cve = resolve_cve(args.cve, engine.knowledge)
        views = [engine.view(n) for n in names]
        return leftover_deletions(assess_fleet(views, engine.knowledge, cve), also_block=not args.no_block)
    if spec.name == "delete" and not ids:
        raise common.CliError("delete needs mitigation IDs, or --leftovers")
    if spec.name == "delete" and args.cve:
        raise common.CliError("--cve only goes with --leftovers")
    try:
        return [ActionRequest(
            kind=kind, servers=tuple(names), mitigation_ids=ids,
            scope=ActionScope.ORG if getattr(args, "org", False) else ActionScope.SERVER,
            backup_id=getattr(args, "backup_id", None),
            also_block=not getattr(args, "no_block", False))]
    except ValueError as exc:  # pydantic's ValidationError: an invalid ID
        first = exc.errors()[0]["msg"] if hasattr(exc, "errors") else str(exc)
        raise common.CliError(str(first).removeprefix("Value error, ")) from None


# --------------------------------------------------------------------------- printing


def _servers(plans: list[ActionPlan]) -> list[str]:
    """The servers the plans change (one action may be several plans of one kind)."""
    return sorted({s.server for p in plans for s in p.steps})


def _ids(plans: list[ActionPlan]) -> list[str]:
    return sorted({i for p in plans for i in p.request.mitigation_ids})


def _print_plan(plans: list[ActionPlan], show_script: bool, out: TextIO) -> None:
    servers = _servers(plans)
    first = plans[0].request
    ids = _ids(plans)
    what = first.kind.value + (f" {', '.join(ids)}" if ids else "")
    scope = "the organisation" if first.scope.value == "org" else f"{len(servers)} server(s)"
    print(f"Plan: {what} on {scope}", file=out)
    for plan in plans:
        for step in plan.steps:
            print(f"  {step.server}: {clean(step.summary)}", file=out)
            if show_script:
                digest = step.script.sha256[:16]
                print(f"    --- PowerShell for {step.server} (sha256 {digest}…) ---", file=out)
                for line in step.script_text.splitlines():
                    print(f"    {line}", file=out)
        for server, why in plan.skipped:
            print(f"  skipped {server}: {clean(why)}", file=out)


def _confirm(count: int, threshold: int) -> bool:
    """Ask on the terminal: y/N, or the number of servers from the bulk threshold on."""
    if not (is_terminal(sys.stdin) and is_terminal(sys.stderr)):
        raise common.CliError("not confirmed: no terminal to ask on (add --yes to change servers from a "
                              "script)", NOT_CONFIRMED)
    if count >= threshold:
        ask = f"This changes {count} servers. Type {count} to go ahead: "
        print(ask, end="", file=sys.stderr, flush=True)
        return sys.stdin.readline().strip() == str(count)
    print("Go ahead? [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().casefold() in ("y", "yes")


def _outcome_table(outcomes: list[ActionOutcome]) -> Table:
    table = Table(["SERVER", "OUTCOME", "DETAIL"])
    for o in outcomes:
        table.add(o.server, o.status.value.replace("_", " "), o.detail)
    return table


def _doc(spec: ActionSpec, args: argparse.Namespace, plans: list[ActionPlan], outcomes: list[ActionOutcome],
         executed: bool, unread: Mapping[str, ServerFailure | None] | None = None) -> ActionDoc:
    from emconsole.cli.jsonout import ActionDoc, OutcomeOut, SkippedOut, StepOut, error_out

    first = plans[0].request if plans else None
    unread = unread or {}
    return ActionDoc(
        action=spec.name, scope=first.scope.value if first else "server",
        mitigation_ids=_ids(plans),
        backup_id=getattr(args, "backup_id", None), dry_run=args.dry_run, executed=executed,
        steps=[StepOut(server=s.server, summary=s.summary, script=s.script_text if args.show_script else None,
                       script_sha256=s.script.sha256) for p in plans for s in p.steps],
        skipped=[SkippedOut(server=n, reason=r, error=error_out(unread.get(n)))
                 for p in plans for n, r in p.skipped],
        outcomes=[OutcomeOut(server=o.server, status=o.status, detail=o.detail,
                             duration_s=round(o.duration, 3),
                             backup_id=str(o.backup.get("backup_id")) if o.backup else None,
                             error=error_out(o.failure)) for o in outcomes],
        ok=executed and all(o.status.value == "done" for o in outcomes)
        and not any(n for p in plans for n, _ in p.skipped if n in unread),
    )


# --------------------------------------------------------------------------- run


def _unread_exit(unread: Mapping[str, ServerFailure | None]) -> int:
    """Nothing was planned: fine (0) unless servers were skipped because they could not be read."""
    for name, failure in unread.items():
        print(f"emconsole: {name} could not be read: {failure.message if failure else 'not read'}",
              file=sys.stderr)
    return 1 if unread else 0


def _run(spec: ActionSpec, args: argparse.Namespace) -> int:
    from emconsole.engine import PlanError

    config = common.load(args)
    read_only = common.read_only_of(args, config)
    org = getattr(args, "org", False)
    names = [s.name for s in common.selected(args, config, change=not org)]
    as_json = args.format == "json"
    text_out = sys.stderr if as_json else sys.stdout

    async def work() -> int:
        async with common.engine_for(config, read_only=read_only) as engine:
            if read_only:  # the engine's own refusal, before anything is read
                from emconsole.models import ActionKind, ActionRequest

                engine.plan(ActionRequest(kind=ActionKind.REAPPLY, servers=(names[0],)))
            views = await common.refresh(engine, names)
            unread = {v.name: v.failure for v in views if v.failure is not None or v.state is None}
            requests = _requests(spec, args, engine, names)
            if not requests:
                print("emconsole: nothing to do: no leftovers on the selected servers", file=sys.stderr)
                if as_json:
                    write_json(_doc(spec, args, [], [], False))
                return _unread_exit(unread)
            try:
                plans = [engine.plan(r) for r in requests]
            except PlanError as exc:
                if not str(exc).startswith("nothing to do"):
                    raise
                print(f"emconsole: {exc}", file=sys.stderr)  # every server skipped: as asked, or unread
                return _unread_exit(unread)
            _print_plan(plans, args.show_script and not as_json, text_out)
            if args.dry_run:
                print("dry run: nothing was sent", file=sys.stderr)
                if as_json:
                    write_json(_doc(spec, args, plans, [], False, unread))
                return 0
            count = len(_servers(plans))
            if not args.yes and not _confirm(count, config.bulk_confirm_threshold):
                print("not confirmed: nothing was changed", file=sys.stderr)
                return NOT_CONFIRMED
            progress = common.Progress(count, spec.name)
            outcomes: list[ActionOutcome] = []
            for plan in plans:
                async for outcome in engine.execute(plan):
                    progress.step(outcome.server, outcome.status.value.replace("_", " "))
                    outcomes.append(outcome)
            order = {n: i for i, n in enumerate(names)}
            outcomes.sort(key=lambda o: order.get(o.server, len(order)))
            if as_json:
                write_json(_doc(spec, args, plans, outcomes, True, unread))
            else:
                write_table(_outcome_table(outcomes), "table")
            bad = [o.server for o in outcomes if o.status.value != "done"]
            bad += [n for p in plans for n, _ in p.skipped if n in unread]
            if bad:
                print(f"emconsole: not verified, failed or not read: {', '.join(bad)}", file=sys.stderr)
            return 1 if bad else 0

    return common.run_async(work())
