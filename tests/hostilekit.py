"""Shared helpers of the hostile-fleet tests (``tests/test_hostile_*.py``): the lab's truth about a
server next to what the console read, lab configs written by the lab for a console in another
process, that process, and the audit log paired up intent by result.

Why a truth function here: "every healthy server is correct" means the console's snapshot equals
the emulated organisation's own state (directory, Windows, IIS), not what another console read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emconsole.backends.lab.exchange.org import LabServer
from emconsole.backends.lab.fleet import LabFleet

from emconsole.labconfig import LAB_PASSWORD_ENV
from emconsole.models import ArtifactKind, ServerState

EM_SERVICE = "MSExchangeMitigation"
_REWRITE_TAGS = {"rule", "preCondition"}


def lab_facts(server: LabServer) -> dict[str, Any]:
    """What the lab holds for one server, in the terms the console reports."""
    record = server.record
    service = server.windows.service(EM_SERVICE)
    rules = sorted(
        element.get("name", "")
        for root in server.iis.config.values()
        for element in root.iter()
        if element.tag in _REWRITE_TAGS and element.get("name", "").startswith("EEMS ")
    )
    return {
        "applied": list(record.applied),
        "blocked": list(record.blocked),
        "server_enabled": record.mitigations_enabled,
        "org_enabled": server.org.directory.org.mitigations_enabled,
        "service": (service.status, service.start_type) if service else None,
        "fqdn": record.fqdn,
        "version": record.build.admin_display_version,
        "rules": rules,
    }


def console_facts(state: ServerState) -> dict[str, Any]:
    """The same facts from a snapshot the console read."""
    service = state.service
    rewrite = (ArtifactKind.REWRITE_RULE, ArtifactKind.REWRITE_PRECONDITION)
    return {
        "applied": list(state.applied),
        "blocked": list(state.blocked),
        "server_enabled": state.server_enabled,
        "org_enabled": state.org_enabled,
        "service": (service.status, service.start_type) if service else None,
        "fqdn": state.fqdn,
        "version": state.admin_display_version,
        "rules": sorted(a.name for a in state.artifacts if a.kind in rewrite),
    }


def write_lab_config(fleet: LabFleet, path: Path, audit: Path, *, call_timeout: float = 4.0,
                     concurrency: int = 8, ems: str = "snapin") -> Path:
    """The config ``emconsole lab --write-config`` writes for this fleet, with the audit log, deadline
    and concurrency of the test in front (top-level keys must precede the first table)."""
    from emconsole.backends.lab.configfile import config_text

    head = [f"audit_path = {json.dumps(str(audit))}", f"call_timeout = {call_timeout}",
            f"concurrency = {concurrency}", ""]
    path.write_text("\n".join(head) + config_text(fleet, ems), encoding="utf-8")
    return path


def cli_env(fleet: LabFleet) -> dict[str, str]:
    """The environment of a console process: the lab's password where ``password_from`` looks."""
    return {**os.environ, LAB_PASSWORD_ENV: fleet.spec.password, "PYTHONUNBUFFERED": "1"}


def cli_command(*args: str) -> list[str]:
    """``emconsole ARGS`` as a new Python process (the installed entry point, via ``-m``)."""
    return [sys.executable, "-m", "emconsole", *args]


def run_cli(fleet: LabFleet, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run ``emconsole ARGS`` in another process against the lab and wait for it."""
    return subprocess.run(cli_command(*args), env=cli_env(fleet), capture_output=True, text=True,
                          timeout=timeout, check=False)


def assert_no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    """A user-facing failure is one ``emconsole: ...`` line, never a Python traceback."""
    for stream in (result.stdout, result.stderr):
        assert "Traceback (most recent call last)" not in stream, stream[-3000:]


@dataclass(frozen=True)
class AuditedChange:
    """One change as the audit log tells it: the intent, and its result if one was written."""

    intent: dict[str, Any]
    result: dict[str, Any] | None

    @property
    def target(self) -> str:
        return str(self.intent["target"])

    @property
    def outcome(self) -> str | None:
        return None if self.result is None else str(self.result["outcome"])


def audited_changes(path: Path) -> list[AuditedChange]:
    """Every intent of the log with its result; asserts that no result lacks its intent and that
    no intent has two results (the file is read raw: a torn line would fail ``json.loads``)."""
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] \
        if path.exists() else []
    intents = [r for r in records if r["kind"] == "intent"]
    results: dict[str, dict[str, Any]] = {}
    for rec in records:
        if rec["kind"] == "result":
            assert rec["id"] not in results, f"two results for one intent: {rec}"
            results[rec["id"]] = rec
    ids = {i["id"] for i in intents}
    assert len(ids) == len(intents), "an intent id was used twice"
    orphans = set(results) - ids
    assert not orphans, f"results without an intent: {orphans}"
    for intent in intents:
        result = results.get(intent["id"])
        if result is not None:
            assert (result["target"], result["action"]) == (intent["target"], intent["action"]), result
    return [AuditedChange(i, results.get(i["id"])) for i in intents]
