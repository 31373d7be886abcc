"""Run headless commands against a lab fleet, in-process, through the real config file, the real
WinRM backend and the real engine — exactly what `emconsole ...` does, with stdout/stderr captured.

    def test_x(cli_lab):                       # a lab per test
        lab = cli_lab(servers=3, per_server={...})
        code, out, err = lab.run("status", "--format", "json")

    with running_cli_lab(folder, servers=9) as lab:   # a lab shared by a module's tests
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emconsole.cli.main import main
from emconsole.labconfig import LAB_PASSWORD_ENV, Lab, start_lab


class Terminal(io.StringIO):
    """A stream that says it is a terminal (for the confirmation prompt and progress lines)."""

    def isatty(self) -> bool:
        return True


@dataclass
class CliLab:
    lab: Lab
    config_path: Path
    audit_path: Path

    def run(self, *args: str, config: bool = True, typed: str | None = None) -> tuple[int, str, str]:
        """``emconsole ARGS --config THE-LAB-CONFIG``: (exit code, stdout, stderr). ``typed``: run as
        on a terminal (stdin and stderr are terminals) with this typed in."""
        out = io.StringIO()
        err: io.StringIO = Terminal() if typed is not None else io.StringIO()
        stdin = Terminal(typed) if typed is not None else io.StringIO()
        argv = [*args, "--config", str(self.config_path)] if config else list(args)
        old_stdin = sys.stdin
        sys.stdin = stdin
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(argv)
                except SystemExit as exc:  # argparse: --help, usage errors
                    code = int(exc.code or 0)
        finally:
            sys.stdin = old_stdin
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


@contextlib.contextmanager
def running_cli_lab(folder: Path, config_extra: str = "", **fields: Any) -> Iterator[CliLab]:
    """A started lab (LabSpec ``fields``) with its config in ``folder`` and its password in the
    environment (as ``password_from`` says); stopped and the environment restored afterwards."""
    lab = start_lab(**fields)
    old = os.environ.get(LAB_PASSWORD_ENV)
    os.environ[LAB_PASSWORD_ENV] = lab.fleet.spec.password
    try:
        config, audit = folder / "config.toml", folder / "audit.jsonl"
        write_config(lab, config, audit, config_extra)
        yield CliLab(lab, config, audit)
    finally:
        lab.stop()
        if old is None:
            os.environ.pop(LAB_PASSWORD_ENV, None)
        else:
            os.environ[LAB_PASSWORD_ENV] = old


@pytest.fixture
def cli_lab(tmp_path: Path) -> Iterator[Callable[..., CliLab]]:
    """Call with LabSpec fields (and ``config_extra=`` TOML text) to start a lab and write its config."""
    numbers = itertools.count(1)
    with contextlib.ExitStack() as stack:

        def factory(config_extra: str = "", **fields: Any) -> CliLab:
            folder = tmp_path / f"lab{next(numbers)}"
            folder.mkdir()
            return stack.enter_context(running_cli_lab(folder, config_extra, **fields))

        yield factory
