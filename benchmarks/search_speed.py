"""Search speed: a synthetic 2,000-block model over 4 tiers x 10 resources, and every legacy query via the CLI.

Writes benchmarks/results/search_speed.{json,md}. Run: .venv/bin/python benchmarks/search_speed.py
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scission.bruteforce import brute_force  # noqa: E402
from scission.files import atomic_write_text  # noqa: E402
from scission.network import NetworkLink, NetworkTable  # noqa: E402
from scission.problem import Candidate, Problem, Tier  # noqa: E402
from scission.search import search  # noqa: E402

LEGACY = REPO / "tests" / "data" / "legacy"
MODELS = sorted(
    "vgg16 vgg19 xception resnet50 resnet101 resnet152 resnet50v2 resnet101v2 resnet152v2 inception_v3 "
    "inceptionresnet_v2 mobilenet mobilenetv2 densenet121 densenet169 densenet201 nasnetlarge nasnetmobile".split()
)
FLAG_SETS = [[], ["-d", "!-1", "-e", "10", "-c", "16"], ["--device-time", "20%"], ["--edge-upload", "0.5"]]


def synthetic(n_blocks=2000, tiers=4, resources=10, seed=0) -> Problem:
    rng = np.random.default_rng(seed)
    layers = tuple(range(n_blocks))
    tier_objs, names = [], []
    for t in range(tiers):
        cands = []
        for r in range(resources):
            name = f"t{t}r{r}"
            names.append(name)
            cands.append(Candidate(name, tuple(rng.exponential(0.01 / (t + 1), n_blocks)),
                                   tuple(int(x) for x in rng.integers(1_000, 2_000_000, n_blocks)), layers, layers))
        tier_objs.append(Tier(f"tier{t}", tuple(cands)))
    links = [NetworkLink(a, b, float(rng.uniform(1, 100)), float(rng.uniform(1, 100)))
             for a in names for b in names if a != b]
    return Problem(tuple(tier_objs), NetworkTable(links))


def main() -> None:
    problem = synthetic()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        top = search(problem, 5)
        times.append(time.perf_counter() - start)
    small = synthetic(n_blocks=12, tiers=3, resources=3, seed=1)
    start = time.perf_counter()
    brute = brute_force(small, 5)
    brute_s = time.perf_counter() - start
    start = time.perf_counter()
    fast = search(small, 5)
    fast_small_s = time.perf_counter() - start
    assert [round(c.latency_s, 9) for c in fast] == [round(c.latency_s, 9) for c in brute]

    venv_cli = REPO / ".venv" / "bin" / "scission"
    # a worktree without its own .venv runs this checkout's code, not the console script's
    cli = [str(venv_cli)] if venv_cli.exists() else [sys.executable, "-m", "scission.cli"]
    walls = []
    for model in MODELS:
        for network in ("network_stats.csv", "network_stats_wired.csv"):
            for flags in FLAG_SETS:
                start = time.perf_counter()
                done = subprocess.run([*cli, "predict", str(LEGACY), network, model, *flags],
                                      capture_output=True, text=True)
                walls.append(time.perf_counter() - start)
                if done.returncode != 0:
                    raise SystemExit(f"{model} {network} {flags}: {done.stderr}")
    results = {
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
        "synthetic": {"blocks": 2000, "tiers": 4, "resources_per_tier": 10, "k": 5,
                      "search_s_runs": times, "search_s_median": statistics.median(times),
                      "best_latency_s": top[0].latency_s},
        "small_vs_brute_force": {"blocks": 12, "tiers": 3, "resources_per_tier": 3,
                                 "brute_force_s": brute_s, "search_s": fast_small_s},
        "legacy_cli_queries": {"count": len(walls), "wall_s_median": statistics.median(walls),
                               "wall_s_max": max(walls), "includes": "interpreter start, loading 5 .dat files"},
    }
    out = REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "search_speed.json", json.dumps(results, indent=2) + "\n")
    md = [
        "# Search speed",
        "",
        "Produced by `.venv/bin/python benchmarks/search_speed.py` on a 2-core machine.",
        "",
        "| what | figure |",
        "|---|---|",
        f"| synthetic 2,000 blocks, 4 tiers x 10 resources, top 5 (median of 3) | {statistics.median(times):.3f} s |",
        f"| 12 blocks, 3 tiers x 3 resources: brute force vs search | {brute_s:.3f} s vs {fast_small_s:.4f} s |",
        f"| {len(walls)} legacy `scission predict` queries incl. interpreter start: median | "
        f"{statistics.median(walls):.3f} s |",
        f"| same, slowest | {max(walls):.3f} s |",
        "",
    ]
    atomic_write_text(out / "search_speed.md", "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
