"""Prediction against measurement on the emulated wireless and wired topologies (issue targets).

Runs `testbed run` for experiments/run-wifi.yaml and experiments/run-wired.yaml (mobilenetv2 and resnet50
each), then `testbed compare` on every model folder, and writes benchmarks/results/testbed_targets.{json,md}.
Targets: median relative error <= 15%, Spearman >= 0.8, regret <= 10%; the simulator within ±15% of the
measured mean per configuration. Run on a quiet host: .venv/bin/python benchmarks/testbed_targets.py
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
BIN = REPO / ".venv" / "bin"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--experiments", nargs="*", default=["run-wifi", "run-wired"])
    parser.add_argument("--out", default=str(REPO / "results" / "targets"))
    parser.add_argument("--results", default="testbed_targets",
                        help="file stem in benchmarks/results/ (a run of one experiment can keep the full table)")
    parser.add_argument("--reuse", action="store_true",
                        help="do not run: summarise and compare the run folders already in --out")
    args = parser.parse_args()
    rows, compares, runs = [], [], {}
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
            done = subprocess.run([str(BIN / "testbed"), "run", str(REPO / "experiments" / f"{name}.yaml"),
                                   "--out", str(out)], text=True, capture_output=True)
            runs[name] = {"exit": done.returncode, "wall_s": time.perf_counter() - started,
                          "stderr_tail": done.stderr.strip().splitlines()[-3:]}
        if (out / "summary.json").exists():
            for row in json.loads((out / "summary.json").read_text()):
                rows.append({**row, "experiment": name})
        for model_dir in sorted(p for p in out.iterdir() if is_replay_folder(p)) if out.exists() else []:
            cmp = subprocess.run([str(BIN / "testbed"), "compare", str(model_dir), "--json"], text=True,
                                 capture_output=True)
            if cmp.returncode == 0:
                try:
                    compares.append({"experiment": name, "model": model_dir.name, "rows": json.loads(cmp.stdout)})
                except ValueError:
                    compares.append({"experiment": name, "model": model_dir.name, "error": cmp.stdout[-500:]})
            else:
                compares.append({"experiment": name, "model": model_dir.name, "error": cmp.stderr.strip()[-500:]})
    results = {"runs": runs, "summary": rows, "compare": compares, "load_average": os.getloadavg()}
    target = REPO / "benchmarks" / "results"
    target.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target / f"{args.results}.json", json.dumps(results, indent=2, default=str) + "\n")

    md = ["# testbed run: predicted against measured", "",
          "Produced by `.venv/bin/python benchmarks/testbed_targets.py"
          + ("" if args.experiments == ["run-wifi", "run-wired"] else f" --experiments {' '.join(args.experiments)}")
          + (f" --results {args.results}" if args.results != "testbed_targets" else "")
          + f"` (runs `testbed run` on {', '.join(f'experiments/{n}.yaml' for n in args.experiments)}, then "
          "`testbed compare` per model).", "",
          "Speed-adjusted = the profile's prediction with each computing node's share scaled by the median, over "
          "the compute-speed probes next to the measurements, of probe / the benchmark's median chained pass; "
          "profile only = unscaled.", "",
          "| topology | model | configs | prediction | median rel. error (<= 15%) | Spearman (>= 0.8) | regret (<= 10%) |",
          "|---|---|---|---|---|---|---|"]
    md += figure_rows(rows)
    md += ["", "## Simulator against measurement (`testbed compare`, target: simulated mean within ±15%)", ""]
    within = total = 0
    for c in compares:
        md.append(f"### {c['experiment']} / {c['model']}")
        md.append("")
        if "error" in c:
            md.append(f"compare failed: {c['error']}")
        else:
            md += ["| configuration | measured mean (s) | simulated (s) | sim error | predicted (s) | profile only (s) |"
                   " speed factors |", "|---|---|---|---|---|---|---|"]
            for row in c["rows"]:
                within += bool(row["within_15pct"])
                total += 1
                md.append(f"| `{row['config']}` | {row['measured_s']:.4f} | {row['simulated_s']:.4f} | "
                          f"{row['sim_error_pct']:+.1f}% | {row['predicted_s']:.4f} | "
                          f"{row.get('predicted_profile_s', row['predicted_s']):.4f} | {row.get('speed_factors') or '-'} |")
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
