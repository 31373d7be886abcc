"""The read-only headless commands against one lab fleet: status, exposure, test-ocs, report, audit,
discover — every format, JSON validated against its schema, --help with examples everywhere, user
errors without tracebacks, and no Textual imported by any of them (a real subprocess proves it)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cliharness import CliLab, running_cli_lab

from emconsole.audit import AuditLog, Change
from emconsole.cli.jsonout import (
    AuditDoc,
    DiscoverDoc,
    ExposureDoc,
    OcsDoc,
    ReportDoc,
    StatusDoc,
    json_schemas,
)
from emconsole.cli.main import COMMANDS
from emconsole.config import parse_config
from emconsole.labconfig import LAB_PASSWORD_ENV

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
FLEET = {1: {"exchange": {"build": "2019 CU15 Feb26SU"}},
         2: {"exchange": {"build": "2019 CU15 Feb26SU", "applied": [], "blocked": ["M2"]}},
         3: {"exchange": {"build": "Exchange SE RTM Jul26SU", "applied": ["M2"]}},
         4: {"exchange": {"build": "2019 CU15 Feb26SU"}, "faults": "refuse"}}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliLab]:
    with running_cli_lab(tmp_path_factory.mktemp("read"), servers=4, per_server=FLEET) as lab:
        yield lab


def test_status_in_every_format(fleet: CliLab) -> None:
    code, out, err = fleet.run("status")
    assert code == 1 and "1 of 4 servers could not be read: LAB-EX04" in err
    lines = out.splitlines()
    header = ["SERVER", "BUILD", "EM", "SERVICE", "OCS", "APPLIED", "BLOCKED", "DRIFT", "ERROR"]
    assert lines[0].split() == header
    assert "\x1b" not in out and "┃" not in out, "plain text when piped"
    assert lines[2].startswith("LAB-EX02") and " M2 " in lines[2]
    assert "connection refused" in lines[4]
    code, out, _ = fleet.run("status", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["SERVER"] for r in rows] == ["LAB-EX01", "LAB-EX02", "LAB-EX03", "LAB-EX04"]
    assert rows[0]["EM"] == "on" and rows[0]["SERVICE"] == "Running" and rows[0]["OCS"] == "ok"
    assert rows[1]["BLOCKED"] == "M2" and rows[1]["DRIFT"] == "-" and rows[2]["DRIFT"] == "1"  # SE .45 + M2
    code, out, _ = fleet.run("status", "--format", "markdown", "--mitigations", "--tag", "site=a")
    assert code == 0 and out.startswith("| SERVER | MITIGATION | KIND | STATUS | BLOCKED | DESCRIPTION |")
    assert "| LAB-EX01 | M2.1.0 | url_rewrite | Applied |" in out and "LAB-EX02" not in out
    code, out, _ = fleet.run("status", "--format", "json")
    doc = StatusDoc.model_validate_json(out)
    ex1, ex2, _ex3, ex4 = doc.servers
    assert ex1.build == "15.2.1748.43" and ex1.em and ex1.em.effective and ex1.ocs_reachable
    assert ex2.blocked == ["M2"] and ex4.error and ex4.error.kind.value == "unreachable" and not ex4.reachable
    assert {a.name for a in ex1.artifacts} == {"EEMS M2.1 OWA CSP - outbound",
                                               "EEMS M2.1 OWA SPA HTML shell - precondition"}


def test_exposure_and_test_ocs(fleet: CliLab) -> None:
    code, out, err = fleet.run("exposure", "--format", "json")
    assert code == 1 and "LAB-EX04" in err
    doc = ExposureDoc.model_validate_json(out)
    states = {(e.server, e.cve): (e.state.value, e.at_risk) for e in doc.exposures}
    assert states[("LAB-EX02", "CVE-2026-42897")] == ("exposed", False)
    assert states[("LAB-EX01", "CVE-2026-42897")] == ("protected", False)
    assert states[("LAB-EX04", "CVE-2026-42897")] == ("unknown", False)
    assert doc.exposures[0].state.value == "exposed", "worst first"
    leftover = next(e for e in doc.exposures if e.leftovers)
    assert leftover.server == "LAB-EX03" and leftover.leftovers[0].mitigation_id == "M2"
    code, out, _ = fleet.run("exposure", "--cve", "M2", "--format", "csv", "--server", "LAB-EX0[123]")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and {r["CVE"] for r in rows} == {"CVE-2026-42897"} and len(rows) == 3
    assert {r["SERVER"]: r["STATE"] for r in rows}["LAB-EX03"] == "fixed, leftovers"
    code, _, err = fleet.run("exposure", "--cve", "CVE-1999-0001")
    assert code == 2 and "known: CVE-2022-41040, CVE-2026-42897" in err
    code, out, _ = fleet.run("test-ocs", "--format", "json")
    results = {r.server: r.reachable for r in OcsDoc.model_validate_json(out).results}
    assert code == 1 and results == {"LAB-EX01": True, "LAB-EX02": True, "LAB-EX03": True, "LAB-EX04": None}
    assert fleet.run("test-ocs", "--server", "LAB-EX01")[0] == 0


def test_audit_with_unknown_outcomes_and_since(fleet: CliLab) -> None:
    log = AuditLog(fleet.audit_path)
    [done] = log.intents([Change("LAB-EX01", "block", ("M2",), details={"summary": "block M2"})])
    log.result(done, outcome="done", duration_s=0.2, detail="MitigationsBlocked now ['M2']",
               target="LAB-EX01", action="block")
    log.intents([Change("LAB-EX02", "delete", ("M2",), details={"backup_id": "B1"})])
    old = {"schema": 1, "kind": "intent", "id": "old1", "time": "2020-01-01T00:00:00+00:00", "operator": "x",
           "pid": 1, "target": "LAB-EX03", "action": "reapply", "mitigation_ids": [], "details": {}}
    with fleet.audit_path.open("a") as fh:
        fh.write(json.dumps(old) + "\n" + "{torn line\n")
    code, out, err = fleet.run("audit", "--format", "json")
    doc = AuditDoc.model_validate_json(out)
    assert code == 0 and doc.unknown_outcomes == 2 and "outcome unknown" in err
    assert [(e.target, e.outcome) for e in doc.entries] == [
        ("LAB-EX01", "done"), ("LAB-EX02", "outcome unknown"), ("LAB-EX03", "outcome unknown")]
    code, out, _ = fleet.run("audit", "--since", "30d", "--unknown")
    assert code == 0 and "LAB-EX02" in out and "LAB-EX03" not in out and "LAB-EX01" not in out
    assert "outcome unknown" in out and "B1" in out
    since = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%d")
    code, out, _ = fleet.run("audit", "--since", since, "--format", "csv")
    assert code == 0 and out.strip() == "TIME,OPERATOR,SERVER,ACTION,MITIGATIONS,OUTCOME,DETAIL,BACKUP"
    assert fleet.run("audit", "--since", "yesterday")[0] == 2


def test_report_in_every_format(fleet: CliLab, tmp_path: Path) -> None:
    target = tmp_path / "report.md"
    code, out, err = fleet.run("report", "-o", str(target), "--since", "30d")
    assert code == 1 and out == "" and f"report written to {target}" in err
    text = target.read_text()
    for heading in ("# Exchange Emergency Mitigation report", "## Summary", "## Exposure", "## Fleet",
                    "## Server LAB-EX01", "## Server LAB-EX04", "## Audit records"):
        assert heading in text, heading
    assert "Could not be read: unreachable" in text and "Recent EM events:" in text
    assert "| 1005 | Information |" in text
    code, out, _ = fleet.run("report", "--format", "html")
    assert out.startswith("<!DOCTYPE html>") and "<h2>Server LAB-EX03</h2>" in out
    assert "<script" not in out.lower()
    code, out, _ = fleet.run("report", "--format", "json", "--events", "2", "--since", "30d")
    doc = ReportDoc.model_validate_json(out)
    assert [s.name for s in doc.servers] == ["LAB-EX01", "LAB-EX02", "LAB-EX03", "LAB-EX04"]
    assert doc.servers[0].events is not None and 0 < len(doc.servers[0].events) <= 2
    assert doc.exposures and doc.since is not None
    code, _, err = fleet.run("report", "-o", str(tmp_path / "no" / "such" / "dir" / "r.md"))
    assert code == 2 and "No such file" in err and "Traceback" not in err


def test_discover_gives_entries_to_paste(fleet: CliLab, tmp_path: Path) -> None:
    config_text = fleet.config_path.read_text()
    first_two = "[[servers]]".join(config_text.split("[[servers]]")[:3])
    small = tmp_path / "small.toml"
    small.write_text(first_two)
    code, out, err = fleet.run("discover", "--seed", "lab-ex02", "--config", str(small), config=False)
    assert code == 0 and "4 Mailbox server(s), 2 not in the configuration" in err
    entries = tomllib.loads(out)["servers"]
    assert [(e["name"], e["host"]) for e in entries] == [("LAB-EX03", "lab-ex03.contoso.local"),
                                                         ("LAB-EX04", "lab-ex04.contoso.local")]
    defaults = "[defaults]\ntransport = \"basic\"\nusername = \"u\"\npassword_from = \"env:X\"\n"
    merged = parse_config(first_two.replace("audit_path", defaults + "audit_path", 0) + "\n" + out)
    assert len(merged.servers) == 4, "pasting the output gives a valid config"
    code, out, _ = fleet.run("discover", "--seed", "LAB-EX01", "--format", "json")
    doc = DiscoverDoc.model_validate_json(out)
    assert all(s.in_config for s in doc.servers) and doc.servers[0].build_name == "Exchange 2019 CU15 Feb26SU"
    code, _, err = fleet.run("discover", "--seed", "LAB-EX04")
    assert code == 1 and "LAB-EX04" in err and "refused" in err


def test_help_with_examples_and_errors_without_tracebacks(fleet: CliLab, tmp_path: Path) -> None:
    for name in COMMANDS:
        if name in ("config", "lab"):
            continue
        code, out, err = fleet.run(name, "--help", config=False)
        assert code == 0 and "examples:" in out and "emconsole " + name in out, name
    missing = tmp_path / "missing.toml"
    for args in (("status", "--config", str(missing)), ("exposure", "--format", "xml"),
                 ("block", "--all"), ("status", "--tag", "site"), ("report", "--events", "-1")):
        code, out, err = fleet.run(*args, config=args[0] != "status" or "--config" not in args)
        assert code == 2 and "Traceback" not in err and err.strip(), args


def test_json_schema_files_match_the_models() -> None:
    folder = ROOT / "docs" / "schema"
    on_disk = {p.name.removesuffix(".schema.json"): json.loads(p.read_text()) for p in folder.glob("*.json")}
    assert on_disk == json_schemas(), "regenerate: python -m emconsole.cli.jsonout docs/schema"


RUNNER = """
import sys
from emconsole.cli.main import main
codes = [main(argv.split("\\x1f")) for argv in sys.argv[1:]]
loaded = sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))
print("CODES", codes, "TEXTUAL", loaded, file=sys.stderr)
"""


def test_headless_commands_never_import_textual(fleet: CliLab) -> None:
    cfg = ["--config", str(fleet.config_path)]
    runs = [["status", "--format", "json"], ["check"], ["exposure"], ["audit"],
            ["test-ocs", "-s", "LAB-EX01"], ["block", "M2", "--all", "--dry-run"],
            ["report", "--format", "html"], ["discover", "--seed", "LAB-EX01"]]
    env = {**os.environ, LAB_PASSWORD_ENV: fleet.lab.fleet.spec.password}
    proc = subprocess.run([sys.executable, "-c", RUNNER, *("\x1f".join(r + cfg) for r in runs)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("CODES [1, 2, 1, 0, 0, 0, 1, 0] TEXTUAL []"), proc.stderr[-2000:]
