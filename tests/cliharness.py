"""Run headless commands against a lab fleet, in-process, through the real config file, the real
WinRM backend and the real engine — exactly what `emconsole ...` does, with stdout/stderr captured.

    def test_x(cli_lab):
        lab = cli_lab(servers=3, per_server={...})
        code, out, err = lab.run("status", "--format", "json")
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emconsole.cli.main import main
from emconsole.labconfig import LAB_PASSWORD_ENV, Lab, start_lab


@dataclass
class CliLab:
    lab: Lab
    config_path: Path
    audit_path: Path

    def run(self, *args: str, config: bool = True) -> tuple[int, str, str]:
        """``emconsole ARGS --config THE-LAB-CONFIG``: (exit code, stdout, stderr)."""
        out, err = io.StringIO(), io.StringIO()
        argv = [*args, "--config", str(self.config_path)] if config else list(args)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse: --help, usage errors
                code = int(exc.code or 0)
        return code, out.getvalue(), err.getvalue()

    def json(self, *args: str) -> tuple[int, dict[str, Any]]:
        code, out, err = self.run(*args, "--format", "json")
        assert out, err
        return code, json.loads(out)


def write_config(lab: Lab, path: Path, audit_path: Path, extra: str = "") -> None:
    """A config file for the lab: every server with snap-in EMS and a ``site`` tag (odd a, even b)."""
    spec = lab.fleet.spec
    lines = [f"audit_path = {json.dumps(str(audit_path))}", "call_timeout = 10", "concurrency = 8",
             "bulk_confirm_threshold = 3", extra, ""]
    for server in lab.fleet.servers:
        lines += [
            "[[servers]]",
            f"name = {json.dumps(server.name)}",
            'host = "127.0.0.1"',
            f"port = {server.port}",
            f"scheme = {json.dumps(spec.scheme)}",
            f"transport = {json.dumps(spec.auth)}",
            'ems = "snapin"',
            f"username = {json.dumps(spec.username)}",
            f'password_from = "env:{LAB_PASSWORD_ENV}"',
            f'tags = {{ site = "{"a" if server.number % 2 else "b"}" }}',
            "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")


@pytest.fixture
def cli_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., CliLab]]:
    """Call with LabSpec fields (and ``config_extra=`` TOML text) to start a lab and write its config."""
    started: list[Lab] = []

    def factory(config_extra: str = "", **fields: Any) -> CliLab:
        lab = start_lab(**fields)
        started.append(lab)
        monkeypatch.setenv(LAB_PASSWORD_ENV, lab.fleet.spec.password)
        config = tmp_path / f"config{len(started)}.toml"
        audit = tmp_path / f"audit{len(started)}.jsonl"
        write_config(lab, config, audit, config_extra)
        return CliLab(lab, config, audit)

    yield factory
    for lab in started:
        lab.stop()
