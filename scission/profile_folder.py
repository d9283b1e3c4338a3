"""A folder of profiles in both formats (this project's ``*.scission`` folders and legacy ``.dat`` files),
read and merged into one profile per resource.

It sits above ``profiles`` and ``legacy`` so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from scission.errors import ProfileError
from scission.legacy import read_legacy_dat
from scission.profiles import FORMAT_NAME, PROFILE_SUFFIX, Profile, Resource, read_profile

__all__ = ["load_profiles", "merge_profiles"]


def load_profiles(folder: str | Path) -> list[Profile]:
    """Every profile in a folder: this project's ``*.scission`` folders and legacy ``<tier>-<name>.dat`` files."""
    folder = Path(folder)
    if not folder.exists():
        raise ProfileError(f"profile folder {folder} does not exist")
    if not folder.is_dir():
        raise ProfileError(f"{folder} is not a folder")
    profiles: list[Profile] = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and entry.name.endswith(PROFILE_SUFFIX):
            profiles.append(read_profile(entry))
        elif entry.is_file() and entry.suffix == ".dat" and "-" in entry.stem:
            profiles.append(read_legacy_dat(entry))
    if not profiles:
        raise ProfileError(
            f"no profiles in {folder}: expected <tier>-<name>.dat files or <tier>-<name>{PROFILE_SUFFIX} folders"
        )
    return merge_profiles(profiles)


def merge_profiles(profiles: Iterable[Profile]) -> list[Profile]:
    """One profile per resource; models from several files are combined, this project's format winning."""
    merged: dict[Resource, Profile] = {}
    for p in profiles:
        if p.resource not in merged:
            merged[p.resource] = p
            continue
        current = merged[p.resource]
        models = dict(current.models)
        for name, model in p.models.items():
            if name not in models or p.source_format == FORMAT_NAME:
                models[name] = model
        merged[p.resource] = replace(current, models=models)
    return list(merged.values())
