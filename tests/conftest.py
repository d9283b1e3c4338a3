"""Shared fixtures and the rule that Docker-backed tests fail, not skip, under CI=true."""

from __future__ import annotations

import ast
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LEGACY_DIR = REPO / "tests" / "data" / "legacy"
VENV_BIN = REPO / ".venv" / "bin"


def console_script(name: str) -> str:
    """The console script in .venv/bin when it exists (the README's set-up), else on PATH."""
    candidate = VENV_BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"console script {name!r} is not installed; run the README's set-up")
    return found


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_docker() -> None:
    """Docker-backed tests: fail under CI=true when no engine answers (scripts/test.sh starts one), else skip."""
    try:
        from emulator import docker_backend

        docker_backend.engine_info()
    except Exception as exc:  # any failure here means "no engine"
        if in_ci():
            pytest.fail(f"CI=true and no Docker Engine answers: {exc}")
        pytest.skip(f"no Docker Engine: {exc}")


@pytest.fixture
def legacy_dir() -> Path:
    return LEGACY_DIR


def imported_modules(path: Path) -> set[str]:
    """Full dotted names of every absolute import in a file (function-local ones included), and for
    ``from m import x`` also ``m.x``: the structure tests' one reading of what a module imports."""
    found = set()
    for node in ast.walk(ast.parse(Path(path).read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found
