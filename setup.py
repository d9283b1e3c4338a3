"""Wheels carry the files the commands need at run time, as ``scission/shipped/`` (see scission/resources.py).

Everything else about the build is in pyproject.toml; this only adds the copy step, which setuptools'
package data cannot express for folders outside the packages. Editable installs skip it: they read the
checkout itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# Paths keep their place relative to one another, so the examples' ../topologies and ../tests/data resolve.
SHIPPED = ("docker", "topologies", "experiments", "tests/data/legacy", "pyproject.toml", "setup.py", "README.md")


class BuildPyWithShipped(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "scission" / "shipped"
        for name in SHIPPED:
            source = HERE / name
            if source.is_dir():
                shutil.copytree(source, target / name, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            elif source.is_file():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildPyWithShipped})
