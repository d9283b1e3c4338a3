"""`testbed run EXPERIMENT` argument parsing and progress display (the testbed CLI registers it)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from scission.plots import add_format_option
from scission.resources import arg_type as shipped


def add_run_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="measure split inference on an emulated topology against the prediction")
    p.add_argument("experiment", type=shipped("experiments"), help="experiment YAML (see experiments/run-*.yaml), "
                   "or a shipped one by name")
    p.add_argument("--out", help="results folder (default results/runs/<name>-<UTC time>)")
    p.add_argument("--image", help="node image tag to use instead of building/looking up the current one")
    add_format_option(p)
    p.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from testbed.run.runner import run_experiment  # the emulator and pandas, only when a run starts
    from testbed.run.spec import load_experiment

    spec = load_experiment(args.experiment)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out = Path(args.out) if args.out else Path("results") / "runs" / f"{spec.name}-{stamp}"
    console = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.fields[step]:<10}"), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=console, transient=False) as progress:
        task = progress.add_task("starting", step="run")

        def on_step(step: str, detail: str) -> None:
            progress.update(task, description=detail, step=step)
            progress.console.log(f"{step}: {detail}")

        try:
            results = run_experiment(spec, out, on_step, image=args.image)
        finally:
            progress.update(task, description=f"results in {out}", step="done")
    for row in results.summary():
        def fmt(v, pct=False):
            return "n/a" if v is None else (f"{v * 100:.1f}%" if pct else f"{v:.3f}")

        print(f"{row['topology']} {row['model']}: median rel. error {fmt(row['median_rel_error'], True)}, "
              f"Spearman {fmt(row['spearman'])}, regret {fmt(row['regret'], True)} "
              f"over {row['configurations']} configurations")
    print(f"results: {out} (summary.md, summary.json, plots/)")
    return 0
