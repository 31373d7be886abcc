"""Dependency direction: the core never imports Textual or pywinrm; the backends never import Textual.

Modules are discovered from the file tree, so a module added later is checked without touching
this test. Each group is imported in a fresh interpreter, one module at a time, and the first
module that pulls in a forbidden package is named. A module that fails to import fails the test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Deliberately not core: the console entry (it starts the Textual app) and `python -m` (it runs main).
NOT_CORE = {"emconsole.__main__", "emconsole.cli.console_cmd"}

_PROBE = r"""
import importlib, json, sys
forbidden = sys.argv[1].split(",")
report = {"culprits": {}, "errors": {}}
for name in sys.argv[2:]:
    try:
        importlib.import_module(name)
    except Exception as exc:
        report["errors"][name] = f"{type(exc).__name__}: {exc}"
        continue
    for pkg in forbidden:
        if pkg not in report["culprits"] and any(m == pkg or m.startswith(pkg + ".") for m in sys.modules):
            report["culprits"][pkg] = name
print(json.dumps(report))
"""


def _modules(folder: str, package: str) -> list[str]:
    names = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join([package, *parts]))
    return names


def _probe(modules: list[str], forbidden: tuple[str, ...]) -> dict[str, dict[str, str]]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, ",".join(forbidden), *modules],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report: dict[str, dict[str, str]] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def test_core_imports_neither_textual_nor_winrm() -> None:
    modules = [m for m in _modules("emconsole", "emconsole") if m not in NOT_CORE]
    known = {"emconsole.models", "emconsole.config", "emconsole.knowledge.builds", "emconsole.cli.main"}
    assert set(modules) >= known
    report = _probe(modules, ("textual", "winrm"))
    assert report["errors"] == {}
    assert report["culprits"] == {}, f"forbidden imports (package: first module that pulled it in): {report}"


def test_backends_do_not_import_textual() -> None:
    modules = _modules("backends", "emconsole.backends")
    report = _probe(modules, ("textual",))
    assert report["errors"] == {}
    assert report["culprits"] == {}, f"a backend imports Textual: {report}"


def test_not_core_list_is_current() -> None:
    """The exclusions above name real files: a renamed module must not hide from the check."""
    on_disk = set(_modules("emconsole", "emconsole"))
    assert on_disk >= NOT_CORE


def test_probe_names_the_culprit() -> None:
    """The probe itself works: a module that imports a forbidden package is caught and named."""
    report = _probe(["emconsole.models", "textual.app", "emconsole.no_such_module"], ("textual", "winrm"))
    assert report["culprits"] == {"textual": "textual.app"}
    assert list(report["errors"]) == ["emconsole.no_such_module"]
