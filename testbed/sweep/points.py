"""Run one sweep point in a worker: change the base document by the point's axis values, run it, return rows.

Must stay importable by worker processes and Dask workers: module-level functions, plain arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from testbed.errors import TestbedError
from testbed.sweep.axes import Applier, Target, apply_simulation
from testbed.sweep.documents import absolute_paths, load_base_document
from testbed.sweep.emulated import run_experiment_point


def simulation_document(base_path: Path, values: dict[str, Any], targets: dict[str, tuple], seed: int,
                        work_dir: Path) -> dict:
    """The base simulation document with the point's values applied, one seed, absolute paths."""
    doc = load_base_document(base_path)
    absolute_paths(doc, base_path.parent, ("topology", "profiles"))
    for arrivals_or_condition in [doc.get("arrivals", {}), *doc.get("conditions", [])]:
        if isinstance(arrivals_or_condition, dict):
            absolute_paths(arrivals_or_condition, base_path.parent, ("path",))
    applier = Applier(doc, base_path.parent)
    for axis, value in values.items():
        links, nodes = targets.get(axis, (None, None))
        apply_simulation(applier, axis, value, Target(links, nodes))
    doc = applier.finish(work_dir)
    doc["seeds"] = [seed]
    doc["records"] = False
    return doc


def run_point(base_kind: str, base_path: str, values: dict[str, Any], targets: dict[str, tuple],
              columns: dict[str, str], seed: int, work_dir: str) -> list[dict]:
    """Rows for one (point, seed): one per policy, axes as columns (canonical units in their names)."""
    axis_columns = {columns[name]: value for name, value in values.items()}
    try:
        if base_kind == "simulation":
            rows = _simulate(Path(base_path), values, targets, seed, Path(work_dir))
        else:
            rows = run_experiment_point(Path(base_path), values, targets, seed, Path(work_dir))
    except TestbedError as exc:
        return [{**axis_columns, "seed": seed, "error": str(exc)}]
    return [{**axis_columns, "seed": seed, **row, "error": None} for row in rows]


def _simulate(base_path: Path, values, targets, seed: int, work_dir: Path) -> list[dict]:
    from testbed.sim import run_simulation
    from testbed.sim.spec import simulation_from_dict

    doc = simulation_document(base_path, values, targets, seed, work_dir)
    spec = simulation_from_dict(doc, base_path.parent, source=base_path)
    result = run_simulation(spec)
    frame = result.runs_frame()
    rows = frame.to_dict("records")
    oracle = [r["mean_s"] for r in rows if r.get("kind") == "oracle"]
    for row in rows:
        row.pop("seed", None)
        # Regret against the oracle of the same seed and conditions (None without an oracle).
        row["regret"] = row["mean_s"] / oracle[0] - 1 if oracle and oracle[0] > 0 else None
    return rows
