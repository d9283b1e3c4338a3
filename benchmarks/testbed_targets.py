"""Prediction against measurement on the emulated wireless and wired topologies (issue targets).

Runs `testbed run` for experiments/run-wifi.yaml and experiments/run-wired.yaml (mobilenetv2 and resnet50
each), then `testbed compare` on every model folder, and writes benchmarks/results/testbed_targets.{json,md}.
Targets, on the headline (profile-only) prediction: median relative error <= 15%, Spearman >= 0.8,
regret <= 10%; the simulator within ±15% of the measured mean per configuration. The measured latencies
are shown beside those of the eager agents (``--before``, default testbed_targets_eager.json: the last
run before the agents served compiled ranges), and each node's runtime and compile times are listed.
Run on a quiet host: python benchmarks/testbed_targets.py (this checkout's code, the interpreter it runs on).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from scission.files import atomic_write_text
from testbed.run.folder import is_replay_folder
from testbed.run.summary import figure_rows

REPO = Path(__file__).resolve().parents[1]


def _testbed(*args: str) -> list[str]:
    """`testbed ...` from this checkout (a worktree has no .venv of its own)."""
    return [sys.executable, "-m", "testbed.cli", *args]


def _configs(out: Path) -> list[dict]:
    """Per model and configuration: label, predicted (profile, speed-adjusted) and measured median and mean."""
    import pandas as pd

    path = out / "configs.parquet"
    if not path.exists():
        return []
    frame = pd.read_parquet(path)
    keep = ["model", "label", "config", "predicted_s", "predicted_adjusted_s", "measured_s", "measured_mean_s",
            "requests_ok", "requests_failed"]
    return json.loads(frame[[c for c in keep if c in frame.columns]].to_json(orient="records"))


def _nodes(out: Path) -> list[dict]:
    """Per model and node: the runtime its profile was timed in and serves, the whole-model compile time the
    benchmark recorded, and what stage loads compiled (first loads of a range pay, later ones are cached)."""
    import pandas as pd

    rows = []
    profiles = pd.read_parquet(out / "profiles.parquet") if (out / "profiles.parquet").exists() else pd.DataFrame()
    loads = pd.read_parquet(out / "loads.parquet") if (out / "loads.parquet").exists() else pd.DataFrame()
    if profiles.empty:
        return rows
    for (model, node), part in profiles.groupby(["model", "node"]):
        mine = loads[(loads["model"] == model) & (loads["node"] == node)] if not loads.empty else loads
        paid = mine[~mine["cached"].astype(bool)] if len(mine) else mine
        rows.append({"model": model, "node": node, "tier": str(part["tier"].iloc[0]),
                     "runtime": str(part["runtime"].iloc[0]) if "runtime" in part else "eager",
                     "call_overhead_s": float(part["call_overhead_s"].iloc[0]) if "call_overhead_s" in part else 0.0,
                     "whole_compile_s": None if "compile_s" not in part or pd.isna(part["compile_s"].iloc[0])
                     else float(part["compile_s"].iloc[0]),
                     "loads": int(len(mine)), "compiles": int(len(paid)),
                     "load_compile_s": [round(float(v), 4) for v in paid["compile_s"]] if len(paid) else [],
                     "served_runtimes": sorted(set(mine["runtime"].dropna())) if len(mine) else []})
    return rows


def _layer_ids(out: Path) -> dict[str, dict[int, tuple[int, int]]]:
    """Model -> block index -> (first layer, last layer), from a run folder's profiles."""
    import pandas as pd

    path = out / "profiles.parquet"
    if not path.exists():
        return {}
    frame = pd.read_parquet(path).drop_duplicates(["model", "block"])
    return {str(m): {int(r.block): (int(r.first_layer), int(r.last_layer)) for r in part.itertuples()}
            for m, part in frame.groupby("model")}


def _as_layers(cid: str, blocks: dict[int, tuple[int, int]]) -> str:
    """An unprefixed block-range id of a folder written before issue 12 ("device:0-25,edge:26-74") in layers."""
    try:
        parts = []
        for part in cid.split(","):
            tier, _, span = part.partition(":")
            first, _, last = span.partition("-")
            parts.append(f"{tier}:{blocks[int(first)][0]}-{blocks[int(last)][1]}")
        return ",".join(parts)
    except (KeyError, ValueError):
        return cid


def _before_after(before: dict, compares: list[dict], layers: dict[str, dict]) -> list[str]:
    """Markdown: measured mean per configuration with eager agents (before) and compiled ones (after); the
    earlier file's block-range ids are read as layer ranges through this run's profiles."""
    earlier = {}
    for c in before.get("compare", []):
        blocks = layers.get(c["experiment"], {}).get(c["model"], {})
        for r in c.get("rows", []):
            earlier[(c["experiment"], c["model"], _as_layers(r["config"], blocks))] = r["measured_s"]
    lines = ["| experiment | model | configuration | measured mean, eager agents (s) | measured mean, compiled (s) "
             "| after / before |", "|---|---|---|---|---|---|"]
    for c in compares:
        for r in c.get("rows", []):
            was = earlier.pop((c["experiment"], c["model"], r["config"]), None)
            ratio = f"{r['measured_s'] / was:.2f}" if was else "-"
            lines.append(f"| {c['experiment']} | {c['model']} | `{r['config']}` | "
                         f"{'-' if was is None else f'{was:.4f}'} | {r['measured_s']:.4f} | {ratio} |")
    for (experiment, model, cid), was in earlier.items():  # measured before only (not among this run's choices)
        lines.append(f"| {experiment} | {model} | `{cid}` | {was:.4f} | - | - |")
    return lines

def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--experiments", nargs="*", default=["run-wifi", "run-wired"])
    parser.add_argument("--out", default=str(REPO / "results" / "targets"))
    parser.add_argument("--results", default="testbed_targets",
                        help="file stem in benchmarks/results/ (a run of one experiment can keep the full table)")
    parser.add_argument("--reuse", action="store_true",
                        help="do not run: summarise and compare the run folders already in --out")
    parser.add_argument("--before", default=str(REPO / "benchmarks" / "results" / "testbed_targets_eager.json"),
                        help="results of the eager agents, for the measured-before column")
    args = parser.parse_args()
    rows, compares, runs, configs, nodes = [], [], {}, {}, {}
    for name in args.experiments:
        out = Path(args.out) / name
        started = time.perf_counter()
        if args.reuse:
            if not (out / "summary.json").exists():
                print(f"--reuse: {out} holds no finished run (no summary.json)", file=sys.stderr)
                sys.exit(2)
            previous = REPO / "benchmarks" / "results" / f"{args.results}.json"
            earlier = json.loads(previous.read_text())["runs"] if previous.exists() else {}
            runs[name] = earlier.get(name, {"exit": 0, "wall_s": float("nan")})
        else:
            done = subprocess.run(_testbed("run", str(REPO / "experiments" / f"{name}.yaml"), "--out", str(out)),
                                  text=True, capture_output=True)
            runs[name] = {"exit": done.returncode, "wall_s": time.perf_counter() - started,
                          "stderr_tail": done.stderr.strip().splitlines()[-3:]}
        if (out / "summary.json").exists():
            for row in json.loads((out / "summary.json").read_text()):
                rows.append({**row, "experiment": name})
        configs[name], nodes[name] = _configs(out), _nodes(out)
        for model_dir in sorted(p for p in out.iterdir() if is_replay_folder(p)) if out.exists() else []:
            cmp = subprocess.run(_testbed("compare", str(model_dir), "--json"), text=True, capture_output=True)
            if cmp.returncode == 0:
                try:
                    compares.append({"experiment": name, "model": model_dir.name, "rows": json.loads(cmp.stdout)})
                except ValueError:
                    compares.append({"experiment": name, "model": model_dir.name, "error": cmp.stdout[-500:]})
            else:
                compares.append({"experiment": name, "model": model_dir.name, "error": cmp.stderr.strip()[-500:]})
    before_path = Path(args.before)
    before = json.loads(before_path.read_text()) if before_path.exists() else {}
    results = {"runs": runs, "summary": rows, "configs": configs, "nodes": nodes, "compare": compares,
               "before": {"file": before_path.name, "summary": before.get("summary", [])},
               "load_average": os.getloadavg()}
    target = REPO / "benchmarks" / "results"
    target.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target / f"{args.results}.json", json.dumps(results, indent=2, default=str) + "\n")

    md = ["# testbed run: predicted against measured", "",
          "Produced by `python benchmarks/testbed_targets.py"
          + ("" if args.experiments == ["run-wifi", "run-wired"] else f" --experiments {' '.join(args.experiments)}")
          + (f" --results {args.results}" if args.results != "testbed_targets" else "")
          + f"` (runs `testbed run` on {', '.join(f'experiments/{n}.yaml' for n in args.experiments)}, then "
          "`testbed compare` per model).", "",
          "The agents serve each tier's block range as one compiled callable, in the runtime the node's profile "
          "was timed in. Headline (profile) = the prediction from the profiles benchmarked in place, before any "
          "request; speed-adjusted (a diagnostic) = the same with each computing node's share scaled by the "
          "median, over the compute-speed probes next to the measurements, of probe / the benchmark's whole pass.",
          "", "| topology | model | configs | prediction | median rel. error (<= 15%) | Spearman (>= 0.8) | regret (<= 10%) |",
          "|---|---|---|---|---|---|---|"]
    md += figure_rows(rows)
    if before:
        md += ["", f"Before, with eager agents (`benchmarks/results/{before_path.name}`; its top level was "
               "speed-adjusted, shown here profile first):", "",
               "| topology | model | configs | prediction | median rel. error | Spearman | regret |",
               "|---|---|---|---|---|---|---|"]
        md += figure_rows(before.get("summary", []))
        md += ["", "## Measured latencies before (eager agents) and after (compiled agents)", ""]
        md += _before_after(before, compares, {name: _layer_ids(Path(args.out) / name) for name in args.experiments})
    md += ["", "## Runtimes and compile times per node", "",
           "| experiment | model | node | runtime | call overhead (ms) | whole-model compile (s) | stage loads | "
           "compiles paid (s) |", "|---|---|---|---|---|---|---|---|"]
    for name, per_node in nodes.items():
        for n in per_node:
            whole = "-" if n["whole_compile_s"] is None else f"{n['whole_compile_s']:.2f}"
            md.append(f"| {name} | {n['model']} | {n['node']} | {n['runtime']} | {n['call_overhead_s'] * 1000:.2f} | "
                      f"{whole} | {n['loads']} | {', '.join(f'{v:.2f}' for v in n['load_compile_s']) or '-'} |")
    md += ["", "## Simulator against measurement (`testbed compare`, target: simulated mean within ±15%)", ""]
    within = total = 0
    for c in compares:
        md.append(f"### {c['experiment']} / {c['model']}")
        md.append("")
        if "error" in c:
            md.append(f"compare failed: {c['error']}")
        else:
            md += ["| configuration | measured mean (s) | simulated (s) | sim error | predicted (s) | speed-adjusted (s) |"
                   " speed factors |", "|---|---|---|---|---|---|---|"]
            for row in c["rows"]:
                within += bool(row["within_15pct"])
                total += 1
                md.append(f"| `{row['config']}` | {row['measured_s']:.4f} | {row['simulated_s']:.4f} | "
                          f"{row['sim_error_pct']:+.1f}% | {row['predicted_s']:.4f} | "
                          f"{row.get('predicted_adjusted_s', row['predicted_s']):.4f} | {row.get('speed_factors') or '-'} |")
        md.append("")
    md.append(f"Simulated within ±15% of measured: {within}/{total} configurations.")
    md.append("")
    md.append(f"Host load average at the end: {os.getloadavg()[0]:.2f}. Run wall times: "
              + ", ".join(f"{k} {v['wall_s']:.0f} s (exit {v['exit']})" for k, v in runs.items()))
    atomic_write_text(target / f"{args.results}.md", "\n".join(md) + "\n")
    print("\n".join(md))
    sys.exit(0 if all(v["exit"] == 0 for v in runs.values()) else 1)


if __name__ == "__main__":
    main()
