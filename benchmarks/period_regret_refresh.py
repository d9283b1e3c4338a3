"""Regret against overhead for re-benchmarking and for recalibration (issue 13 point 5), from the shipped sweep.

Run the sweep, then this on its folder:

    python -m testbed.cli sweep experiments/sweep-period-regret.yaml --report
    python benchmarks/period_regret_refresh.py results/sweeps/period-regret

Writes benchmarks/results/period_regret_refresh.md: per refresh mode and benchmarking period, the periodic
policy's mean regret (mean latency / the oracle's - 1, same seed) and overhead fraction, with 95% Student-t
half-widths over the replications, and the prices the profiles carry (what a round and a switch cost).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scission.files import atomic_write_text  # noqa: E402
from scission.plots import format_value  # noqa: E402
from testbed.sweep.plots import summarise  # noqa: E402


def seconds(value: float) -> str:
    return "0" if value == 0 else format_value("x_s", value)


def prices(sim_file: Path) -> list[str]:
    """What the sim file's profiles charge per node: a benchmark, a recalibration, a whole-model compile."""
    from testbed.policies.costs import benchmark_price, compile_price
    from testbed.sim.driver import WorldPlanner
    from testbed.sim.spec import load_simulation
    from testbed.sim.world import load_world

    world = load_world(load_simulation(sim_file))
    planner = WorldPlanner(world)
    lines = ["| node | resource | runtime | benchmark (wall_s) | recalibration | compile, whole model |",
             "|---|---|---|---:|---:|---:|"]
    for name, nm in world.nodes.items():
        run = nm.profile.run
        bench = benchmark_price(run)
        recal = planner.recalibrate_price(name)
        n = len(nm.profile.blocks)
        lines.append(f"| {name} | {nm.resource} | {run.get('runtime', 'eager')} | "
                     f"{seconds(bench.work_s) if bench else '-'} | "
                     f"{seconds(recal.work_s)} ({recal.source}) | "
                     f"{seconds(compile_price(run, n, 0, n - 1))} |")
    return lines


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "results" / "sweeps" / "period-regret")
    table = pd.read_parquet(folder / "results.parquet")
    table = table[table["error"].isna() & (table["kind"] == "periodic")]
    by = ["refresh", "benchmark_period_s"]
    stats = {m: summarise(table, by, m) for m in ("regret", "overhead_fraction", "mean_s", "repartitions")}
    merged = stats["regret"][by + ["n"]].copy()
    for m, s in stats.items():
        merged[m], merged[f"{m}_ci95"] = s["mean"].to_numpy(), s["ci95"].to_numpy()
    compile_s = table.groupby(by)["compile_work_s"].mean().to_numpy() if "compile_work_s" in table else None
    rows = ["| refresh | period | regret | overhead fraction | mean latency | switches | compile work | seeds |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for i, r in merged.reset_index(drop=True).iterrows():
        compile_text = seconds(compile_s[i]) if compile_s is not None else "-"
        rows.append(f"| {r['refresh']} | {format_value('benchmark_period_s', r['benchmark_period_s'])} | "
                    f"{format_value('regret', r['regret'])} ± {format_value('regret', r['regret_ci95'])} | "
                    f"{format_value('overhead_fraction', r['overhead_fraction'])} ± "
                    f"{format_value('overhead_fraction', r['overhead_fraction_ci95'])} | "
                    f"{format_value('mean_s', r['mean_s'])} | {r['repartitions']:.1f} | {compile_text} | {int(r['n'])} |")
    sim_file = REPO / "experiments" / "sim-period-regret.yaml"
    md = ["# Period regret: re-benchmarking against recalibration", "",
          "Produced by", "",
          "    python -m testbed.cli sweep experiments/sweep-period-regret.yaml --report",
          f"    python benchmarks/period_regret_refresh.py {folder}", "",
          "The periodic policy of `experiments/sim-period-regret.yaml` (resnet50, wandering uplink, 1800 s), "
          "per refresh mode and period; mean ± 95% Student-t half-width over the seeds; regret = mean latency / "
          "the oracle's − 1 (same seed); overhead fraction = refresh and compile node-seconds / node "
          "capacity-seconds; compile work = node-seconds spent compiling new block ranges on switches (mean per run).",
          "", *rows, "", "## Prices the profiles carry", "", *prices(sim_file), ""]
    out = REPO / "benchmarks" / "results" / "period_regret_refresh.md"
    atomic_write_text(out, "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
