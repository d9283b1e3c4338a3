"""The simulator's architecture rules: SimPy only in the kernel; no run-side imports; light imports; true __all__."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys

import pytest
from conftest import REPO, imported_modules

SIM_MODULES = ["spec", "world", "conditions", "kernel", "streams", "station", "arrivals", "engine", "driver", "stats",
               "runner", "output", "cli"]
# The run side: the simulator never imports it.
RUN_SIDE = ("testbed.run", "testbed.compare")


def _imported(path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_simpy_is_imported_only_by_the_simulators_kernel():
    users = sorted(str(p.relative_to(REPO)) for p in (REPO / "testbed").rglob("*.py") if "simpy" in _imported(p))
    assert users == ["testbed/sim/kernel.py"]


def test_only_the_kernel_touches_simpys_internals():
    for path in (REPO / "testbed" / "sim").rglob("*.py"):
        if path.name == "kernel.py":
            continue
        text = path.read_text()
        for name in ("._queue", "._now", "._eid", "._value"):
            assert name not in text, f"{path.relative_to(REPO)} uses SimPy's {name}; go through testbed.sim.kernel"


def test_the_simulator_never_imports_the_run_side():
    for path in sorted((REPO / "testbed" / "sim").rglob("*.py")):
        bad = sorted(m for m in imported_modules(path)
                     if m.startswith("testbed.run_") or any(m == r or m.startswith(f"{r}.") for r in RUN_SIDE))
        assert not bad, f"{path.relative_to(REPO)} imports {bad}: testbed/sim and testbed/run never import each other"


def test_the_simulator_never_imports_the_emulators_docker_layer():
    for path in (REPO / "testbed" / "sim").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("emulator."):
                assert node.module in ("emulator.topology", "emulator.errors", "scission.files"), f"{path}: {node.module}"
        assert "docker" not in _imported(path), path


@pytest.mark.parametrize("module", ["testbed.cli", "testbed.sim", "testbed.sim.spec", "testbed.sim.world"])
def test_light_modules_do_not_load_simpy_matplotlib_or_tensorflow(module):
    code = (f"import sys, {module}; "
            "print([m for m in ('simpy', 'matplotlib', 'tensorflow', 'keras', 'docker') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", SIM_MODULES)
def test_all_lists_exist(name):
    module = importlib.import_module(f"testbed.sim.{name}")
    for symbol in module.__all__:
        assert hasattr(module, symbol), f"testbed.sim.{name}.{symbol}"


def test_package_all_is_complete():
    import testbed.errors
    import testbed.sim

    for module in (testbed.sim, testbed.errors):
        for symbol in module.__all__:
            assert hasattr(module, symbol), symbol
