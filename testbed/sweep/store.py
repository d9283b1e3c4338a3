"""Sweep results on disk: one Parquet part per finished (point, seed), merged into one tidy table.

Parts land atomically as points finish, so an interrupted sweep loses only the points in flight, and
a re-run skips every point whose part exists. ``results.parquet`` is the merged table (one row per
point, seed and policy; axes as columns), rewritten as parts arrive and at the end.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from scission.files import atomic_write_parquet

RESULTS_FILE = "results.parquet"


class ResultStore:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.parts = self.folder / "parts"
        self.parts.mkdir(parents=True, exist_ok=True)

    def done_keys(self) -> set[str]:
        return {p.stem for p in self.parts.glob("*.parquet")}

    def write_part(self, key: str, rows: list[dict]) -> None:
        frame = pd.DataFrame(rows)
        frame.insert(0, "point_key", key)
        atomic_write_parquet(frame, self.parts / f"{key}.parquet")

    def merge(self, keys: Iterable[str] | None = None) -> pd.DataFrame:
        wanted = set(keys) if keys is not None else None
        frames = [
            pd.read_parquet(p) for p in sorted(self.parts.glob("*.parquet")) if wanted is None or p.stem in wanted
        ]
        table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        atomic_write_parquet(table, self.folder / RESULTS_FILE)
        return table
