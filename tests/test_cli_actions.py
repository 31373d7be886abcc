"""The action commands against the lab: --dry-run changes nothing, --yes changes exactly what the plan
said (and the audit log records it), confirmation on a terminal (y/N, typed count from the bulk
threshold), read-only refusal, per-server outcomes and exit codes, delete/restore with backups."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from cliharness import CliLab

from emconsole.cli.jsonout import ActionDoc, AuditDoc, ExposureDoc
from emconsole.labconfig import Lab

CU15, SE45 = "2019 CU15 Feb26SU", "Exchange SE RTM Jul26SU"
EX1, EX2, EX3, EX4 = "LAB-EX01", "LAB-EX02", "LAB-EX03", "LAB-EX04"
FLEET = {1: {"exchange": {"build": CU15, "applied": ["M2"]}},
         2: {"exchange": {"build": CU15, "blocked": ["M2"]}},
         3: {"exchange": {"build": SE45, "applied": ["M2"]}},
         4: {"exchange": {"build": CU15}}}


def world(lab: Lab) -> dict[str, Any]:
    """Everything an action could change on the lab: directory, IIS, services, pools, files."""
    org = lab.org
    out: dict[str, Any] = {"org_enabled": org.directory.org.mitigations_enabled}
    for name, srv in sorted(org.servers.items()):
        rec = srv.record
        out[name] = {
            "blocked": list(rec.blocked), "enabled": rec.mitigations_enabled, "applied": list(rec.applied),
            "iis": {loc: srv.iis.effective(loc) for loc in srv.iis.config},
            "pools": dict(srv.iis.pools),
            "services": {n: (s.status, s.start_type, s.pid) for n, s in srv.windows.services.items()},
            "files": dict(srv.windows.files),
        }
    return out


def audit_lines(lab: CliLab) -> list[dict[str, Any]]:
    if not lab.audit_path.exists():
        return []
    return [json.loads(line) for line in lab.audit_path.read_text().splitlines()]


def test_dry_run_changes_nothing_and_yes_changes_exactly_the_plan(cli_lab: Callable[..., CliLab]) -> None:
    lab = cli_lab(servers=4, per_server=FLEET)
    before = world(lab.lab)
    code, out, err = lab.run("block", "M2", "--all", "--dry-run", "--show-script", "--format", "json")
    assert code == 0, err
    plan = ActionDoc.model_validate_json(out)
    assert plan.dry_run and not plan.executed and plan.outcomes == []
    assert [s.server for s in plan.steps] == [EX1, EX2, EX3, EX4]
    assert all(s.script and "Set-ExchangeServer" in s.script for s in plan.steps)
    assert "Plan: block M2 on 4 server(s)" in err and "dry run: nothing was sent" in err
    assert world(lab.lab) == before and audit_lines(lab) == []

    code, out, err = lab.run("block", "M2", "-s", EX1, "-s", EX3, "--yes", "--format", "json")
    assert code == 0, err
    doc = ActionDoc.model_validate_json(out)
    assert doc.ok and doc.executed and [o.status.value for o in doc.outcomes] == ["done", "done"]
    after = world(lab.lab)
    for step in doc.steps:
        written = re.search(r"\(writes (.*)\)", step.summary)
        assert written is not None
        assert after[step.server]["blocked"] == written.group(1).split(", ")
        before[step.server]["blocked"] = after[step.server]["blocked"]
    assert after == before, "something beyond the plan changed"
    records = audit_lines(lab)
    kinds = [r["kind"] for r in records]
    assert kinds.count("intent") == 2 and kinds.count("result") == 2
    hashes = {r["script_sha256"] for r in records if r["kind"] == "intent"}
    assert hashes == {s.script_sha256 for s in doc.steps}, "the audit hashes the very scripts the plan showed"
    code, out, _ = lab.run("audit", "--format", "json")
    entries = AuditDoc.model_validate_json(out).entries
    assert code == 0 and {(e.target, e.action, e.outcome) for e in entries} == {(EX1, "block", "done"),
                                                                               (EX3, "block", "done")}


def test_confirmation_on_a_terminal(cli_lab: Callable[..., CliLab]) -> None:
    lab = cli_lab(servers=4, per_server=FLEET)
    before = world(lab.lab)
    code, out, err = lab.run("disable", "--server", EX4)  # no terminal, no --yes
    assert code == 4 and "--yes" in err and world(lab.lab) == before
    code, _, err = lab.run("disable", "--server", EX4, typed="n\n")
    assert code == 4 and "Go ahead? [y/N]" in err and world(lab.lab) == before
    code, out, err = lab.run("disable", "--server", EX4, typed="y\n")
    assert code == 0 and lab.lab.org.server(EX4).record.mitigations_enabled is False
    assert "[1/1] LAB-EX04: done" in err, "progress per server on a terminal"
    assert re.search(r"LAB-EX04\s+done\s+MitigationsEnabled \(server\) True -> False", out)
    # from the bulk threshold (3) on: the number of servers must be typed
    before = world(lab.lab)
    code, _, err = lab.run("enable", "--all", typed="y\n")
    assert code == 4 and "Type 4 to go ahead" in err and world(lab.lab) == before
    code, _, err = lab.run("enable", "--all", typed="4\n")
    assert code == 0 and all(s.record.mitigations_enabled for s in lab.lab.org.servers.values())


def test_read_only_refuses_before_anything_is_sent(cli_lab: Callable[..., CliLab]) -> None:
    lab = cli_lab(servers=2, config_extra="read_only = true")
    before = world(lab.lab)
    for args in (("block", "M2", "--all", "--yes"), ("disable", "--org", "--yes"),
                 ("delete", "--leftovers", "--all", "--yes", "--dry-run")):
        code, out, err = lab.run(*args)
        assert code == 2 and "read-only" in err and out == "", args
    assert world(lab.lab) == before and audit_lines(lab) == []
    code, out, _ = lab.run("test-ocs")  # read-only operations still work
    assert code == 0 and out.count("reachable") == 2
    writable = cli_lab(servers=1)
    code, _, err = writable.run("--read-only", "reapply", "--server", EX1, "--yes", config=True)
    assert code == 2 and "read-only" in err
    code, _, err = writable.run("reapply", "--server", EX1, "--yes", "--read-only")
    assert code == 2 and "read-only" in err and audit_lines(writable) == []


def test_outcomes_and_exit_codes(cli_lab: Callable[..., CliLab]) -> None:
    lab = cli_lab(servers=2, per_server={2: {"faults": "refuse"}})
    code, out, err = lab.run("reapply", "--all", "--yes")
    assert code == 1 and f"not verified, failed or not read: {EX2}" in err
    assert re.search(rf"{EX1}\s+done\s+MSExchangeMitigation Running, process \d+ -> \d+", out)
    assert re.search(rf"{EX2}\s+failed\s+unreachable", out)
    code, out, err = lab.run("unblock", "M2", "-s", EX1, "--yes")
    assert code == 0 and "nothing to do" in err
    code, out, err = lab.run("unblock", "M2", "--all", "--yes")  # LAB-EX02 could not be read: not "as asked"
    assert code == 1 and f"{EX2} could not be read" in err
    code, out, err = lab.run("block", "M2", "--all", "--yes", "--format", "json")
    doc = ActionDoc.model_validate_json(out)
    assert code == 1 and not doc.ok and [o.server for o in doc.outcomes] == [EX1]
    assert doc.skipped[0].server == EX2 and "not been read" in doc.skipped[0].reason
    for args, words in ((("block", "M2"), "say which servers"), (("block", "M2;x", "--all"), "not valid"),
                        (("block", "M2", "-s", "LAB-EX1"), "did you mean LAB-EX01"),
                        (("restore", "../etc", "-s", EX1, "--yes"), "backup"),
                        (("delete", "--all", "--yes"), "mitigation IDs, or --leftovers"),
                        (("disable", "--yes"), "say which servers")):
        code, out, err = lab.run(*args)
        assert code == 2 and words in err and "Traceback" not in err, (args, err)


def test_delete_by_the_applied_full_id_removes_every_rule(cli_lab: Callable[..., CliLab]) -> None:
    """A server lists M2.1.0 but names its rules 'EEMS M2.1 ...': the full ID finds them (by base ID)."""
    lab = cli_lab(servers=1, per_server={1: FLEET[1]})
    owa = lab.lab.org.server(EX1).iis
    outbound = "system.webServer/rewrite/outboundRules"
    before = {f: owa.rule_names("Default Web Site/owa", f"{outbound}/{f}")
              for f in ("rule", "preConditions/preCondition")}
    assert all(before.values())
    code, out, err = lab.run("delete", "M2.1.0", "-s", EX1, "--yes", "--format", "json")
    assert code == 0, err
    [outcome] = ActionDoc.model_validate_json(out).outcomes
    assert outcome.status.value == "done" and outcome.backup_id, outcome.detail
    assert all(name in outcome.detail for names in before.values() for name in names)
    assert all(owa.rule_names("Default Web Site/owa", f"{outbound}/{f}") == [] for f in before)
    assert "M2.1.0" in lab.lab.org.server(EX1).record.blocked


def test_delete_restore_and_leftovers(cli_lab: Callable[..., CliLab]) -> None:
    lab = cli_lab(servers=4, per_server=FLEET)
    before = world(lab.lab)
    code, out, err = lab.run("delete", "M2", "-s", EX1, "--yes", "--format", "json")
    assert code == 0, err
    doc = ActionDoc.model_validate_json(out)
    backup = doc.outcomes[0].backup_id
    assert backup and any(backup.lower() in path for path in lab.lab.org.server(EX1).windows.files)
    assert world(lab.lab)[EX1]["iis"] != before[EX1]["iis"]
    code, _, err = lab.run("restore", backup, "-s", EX1, "--yes")
    assert code == 0, err
    assert world(lab.lab)[EX1]["iis"] == before[EX1]["iis"], "restore put back exactly what delete removed"

    code, out, err = lab.run("delete", "--leftovers", "--all", "--yes", "--format", "json")
    assert code == 0, err
    doc = ActionDoc.model_validate_json(out)
    assert [(s.server, doc.mitigation_ids) for s in doc.steps] == [(EX3, ["M2"])]
    assert doc.outcomes[0].backup_id
    code, out, _ = lab.run("exposure", "--format", "json")
    assert not any(e.leftovers for e in ExposureDoc.model_validate_json(out).exposures)
    code, _, err = lab.run("delete", "--leftovers", "--all", "--yes")
    assert code == 0 and "nothing to do" in err
