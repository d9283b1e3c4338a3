"""Emulated sweep points: a `testbed run` experiment with the point's link conditions or model applied.

One point brings its topology up, runs the experiment and brings it down, so points run one at a time
on a host. Rows are one per (model, configuration): predicted and measured latency and the run's figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from testbed.errors import SweepError
from testbed.run.spec import experiment_from_dict
from testbed.run.summary import summarise
from testbed.sweep.axes import Applier, Target, apply_simulation
from testbed.sweep.documents import absolute_paths, load_base_document

EMULATED_AXES = ("bandwidth", "rtt", "loss", "model")


def experiment_document(base_path: Path, values: dict[str, Any], targets: dict[str, tuple], work_dir: Path) -> dict:
    doc = load_base_document(base_path)
    absolute_paths(doc, base_path.parent, ("topology",))
    applier = Applier(doc, base_path.parent)
    for axis, value in values.items():
        if axis not in EMULATED_AXES:
            raise SweepError(f"axis {axis} cannot change an emulated experiment; use {', '.join(EMULATED_AXES)}")
        if axis == "model":
            applier.doc["models"] = [value]
            continue
        links, nodes = targets.get(axis, (None, None))
        apply_simulation(applier, axis, value, Target(links, nodes))
    return applier.finish(work_dir)


def run_experiment_point(base_path: Path, values: dict[str, Any], targets: dict[str, tuple], seed: int,
                         work_dir: Path) -> list[dict]:
    from testbed.run.runner import run_experiment  # the emulator, only in emulated points (not sim workers)

    doc = experiment_document(base_path, values, targets, work_dir)
    doc["seed"] = seed
    spec = experiment_from_dict(doc, base_path.parent, source=base_path)
    results = run_experiment(spec, work_dir / "run")
    rows = []
    for model, frame in results.configs.items():
        figures = summarise(frame)
        for _, r in frame.iterrows():
            rows.append({"model": model, "config": r["config"], "label": r["label"],
                         "predicted_s": r["predicted_s"], "predicted_adjusted_s": r.get("predicted_adjusted_s"),
                         "measured_s": r["measured_s"],
                         "measured_mean_s": r["measured_mean_s"], "requests_ok": int(r["requests_ok"]),
                         "requests_failed": int(r["requests_failed"]),
                         "median_rel_error": figures["median_rel_error"], "spearman": figures["spearman"],
                         "regret": figures["regret"]})
    return rows
