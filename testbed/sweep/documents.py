"""Base documents of a sweep: the simulation or experiment file a point changes, read as a plain mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scission.files import read_yaml
from testbed.errors import SweepError

__all__ = ["absolute_paths", "load_base_document"]


def load_base_document(path: Path) -> dict[str, Any]:
    """The base file as a mapping (SweepError when it cannot be read or is not a mapping)."""
    doc = read_yaml(path, SweepError, "base file")
    if not isinstance(doc, dict):
        raise SweepError(f"base file {path} is not a mapping")
    return doc


def absolute_paths(doc: dict[str, Any], base_dir: Path, keys: tuple[str, ...]) -> None:
    """Make the relative paths under ``keys`` absolute (relative to ``base_dir``), in place."""
    for key in keys:
        if isinstance(doc.get(key), str) and not Path(doc[key]).is_absolute():
            doc[key] = str((base_dir / doc[key]).resolve())
