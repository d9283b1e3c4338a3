"""Price re-benchmarking for the legacy machines with the overhead `scission benchmark` measured here.

The legacy profiles have no benchmark wall time. A benchmark costs about `overhead x R` whole-model
inferences plus the build (benchmarks/results/benchmark_fidelity.json, measured on this host), so on a
machine whose model latency is T it costs `overhead x R x T + build x T / T_here`. This writes the legacy
profiles, in this project's format, with that figure as `run["wall_s"]`, into experiments/profiles-priced/,
for the benchmarking-period sweep. Run: .venv/bin/python benchmarks/priced_profiles.py
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scission.profile_folder import load_profiles  # noqa: E402
from scission.profiles import write_model  # noqa: E402

REPEATS = 10


def main() -> None:
    measured = {m["model"]: m for m in json.loads(
        (REPO / "benchmarks" / "results" / "benchmark_fidelity.json").read_text())["models"]}
    out = REPO / "experiments" / "profiles-priced"
    shutil.rmtree(out, ignore_errors=True)
    for profile in load_profiles(REPO / "tests" / "data" / "legacy"):
        for name, model in profile.models.items():
            m = measured.get(name)
            if m is None:
                continue
            latency_s = sum(model.latencies_s)
            here_s = m["whole_median_ms"] / 1000
            wall_s = m["overhead"] * REPEATS * latency_s + m["build_s"] * latency_s / here_s
            run = {"wall_s": wall_s, "repeats": REPEATS, "priced_from": "benchmarks/results/benchmark_fidelity.json",
                   "overhead_ratio": m["overhead"]}
            write_model(out, profile.resource, replace(model, run=run),
                        {"source": "legacy Scission measurements, benchmark cost priced on this host"})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
