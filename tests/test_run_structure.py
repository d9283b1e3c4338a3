"""Layout rules of the measured world: `testbed.run` and `testbed.sim` never import each other; predict is pure;
the old flat modules are gone and nothing imports them; every `__all__` of testbed.run is true."""

from __future__ import annotations

import importlib

import pytest
from conftest import REPO, imported_modules

OLD_MODULES = {"testbed.experiment", "testbed.results", "testbed.speeds", "testbed.run_plots", "testbed.run_cli",
               "testbed.sim.compare"}
RUN_MODULES = sorted(p.stem for p in (REPO / "testbed" / "run").glob("*.py") if p.stem != "__init__")


def _under(modules: set[str], package: str) -> set[str]:
    return {m for m in modules if m == package or m.startswith(package + ".")}


def test_run_never_imports_sim():
    for path in (REPO / "testbed" / "run").rglob("*.py"):
        assert not _under(imported_modules(path), "testbed.sim"), path


def test_sim_never_imports_run():
    for path in (REPO / "testbed" / "sim").rglob("*.py"):
        if path.name == "compare.py":
            continue  # the old home of compare, if a tree still has it
        assert not _under(imported_modules(path), "testbed.run"), path


def test_predict_imports_no_emulator():
    assert not _under(imported_modules(REPO / "testbed" / "run" / "predict.py"), "emulator")


def test_the_old_flat_modules_are_gone_and_nothing_imports_them():
    for name in OLD_MODULES:
        assert not (REPO / (name.replace(".", "/") + ".py")).exists(), name
    for folder in ("scission", "emulator", "testbed", "tests", "benchmarks"):
        for path in (REPO / folder).rglob("*.py"):
            assert not (imported_modules(path) & OLD_MODULES), path


@pytest.mark.parametrize("name", RUN_MODULES)
def test_all_lists_exist(name):
    module = importlib.import_module(f"testbed.run.{name}")
    for symbol in getattr(module, "__all__", []):
        assert hasattr(module, symbol), f"testbed.run.{name}.{symbol}"
