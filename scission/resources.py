"""Where the files the commands need at run time live: the checkout, or the installed wheel's copy.

In a checkout they are the repository's own ``docker/``, ``topologies/``, ``experiments/`` and
``tests/data/legacy/``. A wheel carries copies of them under ``scission/shipped/`` (setup.py's build
step), laid out as in the repository so the examples' relative paths (``../topologies/...``) still
resolve. Shipped topologies, examples and data folders are reachable by name (``emulator up four-tier``,
``testbed simulate sim-four-tier``, ``scission predict legacy ...``); ``python -m scission.resources``
lists them with their paths. No TensorFlow, no emulator or testbed imports: every package may use this.
"""

from __future__ import annotations

import argparse
import importlib.resources
import sys
from pathlib import Path

__all__ = ["KINDS", "arg_type", "checkout_root", "docker_dir", "project_file", "resolve", "root", "shipped"]

# kind -> (folder under the root, file suffix a name may leave out; "" for folders)
KINDS: dict[str, tuple[str, str]] = {
    "topologies": ("topologies", ".yaml"),
    "experiments": ("experiments", ".yaml"),
    "data": ("tests/data", ""),
}
SHIPPED_DIR = "shipped"


def checkout_root() -> Path | None:
    """The repository root when this code runs from a checkout (or an editable install of one)."""
    repo = Path(__file__).resolve().parents[1]
    if (repo / "pyproject.toml").is_file() and (repo / "docker" / "Dockerfile").is_file():
        return repo
    return None


def root() -> Path:
    """The checkout root, else the wheel's ``scission/shipped`` folder."""
    repo = checkout_root()
    if repo is not None:
        return repo
    return Path(str(importlib.resources.files("scission") / SHIPPED_DIR))


def docker_dir() -> Path:
    """The node image's build files (Dockerfile, build_base.sh)."""
    return root() / "docker"


def project_file(name: str) -> Path:
    """pyproject.toml, setup.py or README.md: what the node image build installs the project with."""
    return root() / name


def shipped(kind: str) -> dict[str, Path]:
    """Name -> path of every shipped file (or data folder) of one kind."""
    folder, suffix = KINDS[kind]
    base = root() / folder
    if not base.is_dir():
        return {}
    if suffix:
        return {p.name[: -len(suffix)]: p for p in sorted(base.glob(f"*{suffix}")) if p.is_file()}
    return {p.name: p for p in sorted(base.iterdir()) if p.is_dir()}


def resolve(kind: str, arg: str) -> str:
    """An existing path as given; else a bare name of a shipped one (``four-tier``, ``four-tier.yaml``).

    Anything else comes back unchanged, so the command reports the missing file its usual way.
    """
    if Path(arg).exists() or "/" in arg:
        return arg
    names = shipped(kind)
    suffix = KINDS[kind][1]
    name = arg[: -len(suffix)] if suffix and arg.endswith(suffix) else arg
    return str(names[name]) if name in names else arg


def arg_type(kind: str):
    """An argparse ``type=`` that resolves shipped names of one kind (see ``resolve``)."""

    def convert(arg: str) -> str:
        return resolve(kind, arg)

    convert.__name__ = f"shipped {kind} name or path"
    return convert


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scission.resources",
        description="List the shipped topologies, example experiments and data folders, or print one's path.")
    parser.add_argument("name", nargs="?", help="print the path of this shipped file or folder")
    parser.add_argument("--kind", choices=sorted(KINDS), help="only this kind")
    args = parser.parse_args(argv)
    kinds = [args.kind] if args.kind else list(KINDS)
    if args.name:
        for kind in kinds:
            path = resolve(kind, args.name)
            if path != args.name or Path(path).exists():
                print(Path(path).resolve())
                return 0
        print(f"scission.resources: error: no shipped file named {args.name!r}", file=sys.stderr)
        return 2
    print(f"root: {root()}")
    for kind in kinds:
        print(f"{kind}: " + ", ".join(shipped(kind)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
