"""The wheel: one top-level import name (``emconsole``) and every module of the tree inside it.

DESIGN.md's traps: ``screens/`` and ``backends/`` must install as ``emconsole.screens`` /
``emconsole.backends`` (never as top-level ``screens``/``backends``), and a subpackage missing from
``[tool.setuptools] packages`` would silently ship as data or not at all. The wheel is built from a
copy of the tree (so no ``build/`` or ``*.egg-info`` lands in the shared working tree), with the
venv's own setuptools (no network).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# top-level folder in the repository -> its place in the installed package
MAPPING = {"emconsole": "emconsole", "screens": "emconsole/screens", "backends": "emconsole/backends"}
_IGNORE = shutil.ignore_patterns(
    ".venv", ".git", ".ci", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis",
    "tests", "bench",
)


def _tree_modules() -> set[str]:
    """Every .py file of the three package folders, as a path inside the wheel."""
    found: set[str] = set()
    for folder, target in MAPPING.items():
        for path in (ROOT / folder).rglob("*.py"):
            if "__pycache__" in path.parts:
                continue
            found.add(f"{target}/{path.relative_to(ROOT / folder).as_posix()}")
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=_IGNORE)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp), str(src)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (built,) = tmp.glob("emconsole-*.whl")
    return zipfile.ZipFile(built)


@pytest.mark.slow
def test_only_top_level_name_is_emconsole(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    tops = {name.split("/", 1)[0] for name in names}
    dist_info = {t for t in tops if t.endswith(".dist-info")}
    assert tops - dist_info == {"emconsole"}
    (info,) = dist_info
    assert wheel.read(f"{info}/top_level.txt").decode().split() == ["emconsole"]


@pytest.mark.slow
def test_every_module_of_the_tree_is_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    in_wheel = {name for name in wheel.namelist() if name.endswith(".py")}
    tree = _tree_modules()
    assert {"emconsole/models.py", "emconsole/screens/__init__.py", "emconsole/backends/__init__.py"} <= tree
    assert tree - in_wheel == set(), "modules missing from the wheel (add the subpackage to pyproject.toml)"
    assert in_wheel - tree == set(), "modules in the wheel that are not in the tree"


@pytest.mark.slow
def test_knowledge_data_ships(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert {"emconsole/knowledge/catalogue.json", "emconsole/knowledge/builds.json"} <= names
