"""Architecture rules: scission never imports emulator or testbed; pure modules stay light; __all__ is true."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

import scission


def _imports(package: str) -> set[str]:
    found = set()
    for path in (REPO / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_scission_never_imports_emulator_or_testbed():
    assert not ({"emulator", "testbed"} & _imports("scission"))


def test_emulator_never_imports_testbed():
    assert "testbed" not in _imports("emulator")


@pytest.mark.parametrize(
    "module",
    ["scission", "scission.cli", "scission.search", "scission.partition", "scission.legacy", "scission.profiles",
     "scission.benchmark.cli", "scission.benchmark.session", "scission.benchmark.worker"],
)
def test_pure_modules_do_not_load_tensorflow(module):
    code = f"import sys, {module}; print([m for m in ('tensorflow', 'keras') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_all_is_complete():
    for name in scission.__all__:
        assert hasattr(scission, name), name


def test_legacy_test_data_is_present():
    data = Path(REPO / "tests" / "data" / "legacy")
    assert len(list(data.glob("*.dat"))) == 5
