"""Sweep executor scaling: the same CPU-bound simulated sweep with 1 and with 2 local workers.

Writes benchmarks/results/sweep_scaling.{json,md}. Run: .venv/bin/python benchmarks/sweep_scaling.py
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scission.files import atomic_write_text  # noqa: E402
from testbed.sweep.runner import run_sweep  # noqa: E402
from testbed.sweep.spec import load_sweep  # noqa: E402


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="sweep-scaling-"))
    base = yaml.safe_load((REPO / "experiments" / "sim-legacy-partition.yaml").read_text())
    base["topology"] = str(REPO / "topologies" / "three-tier-wifi.yaml")
    base["profiles"] = str(REPO / "tests" / "data" / "legacy")
    base["service"] = "lognormal"
    base["arrivals"] = {"kind": "poisson", "rate_per_s": 0.5}
    base["stop"] = {"requests": 60_000}  # about a second of CPU per point
    (work / "base.yaml").write_text(yaml.safe_dump(base))
    sweep = {"name": "scaling", "base": {"simulation": "base.yaml"},
             "axes": {"bandwidth": {"values": [1, 5, 20, 50], "unit": "mbit"}, "model": ["mobilenetv2", "resnet50"]},
             "replications": 2}
    (work / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    spec = load_sweep(work / "sweep.yaml")
    walls = {}
    for workers in (1, 2):
        out = work / f"out-{workers}"
        start = time.perf_counter()
        outcome = run_sweep(spec, out, workers=workers)
        walls[workers] = time.perf_counter() - start
        assert outcome.ran == outcome.total == 16
    speedup = walls[1] / walls[2]
    results = {"points": 16, "requests_per_point_and_policy": 60_000, "cores": os.cpu_count(),
               "wall_s": {str(k): v for k, v in walls.items()}, "speedup_2_vs_1": speedup}
    out_dir = REPO / "benchmarks" / "results"
    atomic_write_text(out_dir / "sweep_scaling.json", json.dumps(results, indent=2) + "\n")
    md = ["# Sweep scaling", "", "Produced by `.venv/bin/python benchmarks/sweep_scaling.py` (16 CPU-bound simulated "
          "points, 4 policies x 60,000 requests each).", "", "| workers | wall (s) |", "|---|---|",
          f"| 1 | {walls[1]:.1f} |", f"| 2 | {walls[2]:.1f} |", "", f"Speed-up with 2 workers: **{speedup:.2f}x** "
          f"(target >= 1.7x on {os.cpu_count()} cores).", ""]
    atomic_write_text(out_dir / "sweep_scaling.md", "\n".join(md))
    print("\n".join(md))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
