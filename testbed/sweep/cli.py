"""`testbed sweep` and `testbed report` argument parsing (the testbed CLI registers these)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scission.plots import add_format_option
from scission.resources import arg_type as shipped


def add_sweep_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run every point of a sweep file (resumable)")
    p.add_argument("spec", type=shipped("experiments"), help="sweep YAML (see experiments/sweep-*.yaml), or a "
                   "shipped one by name")
    p.add_argument("--out", help="results folder (default results/sweeps/<name>)")
    p.add_argument("--executor", choices=["local", "dask"], default="local",
                   help="local worker processes (default) or an existing Dask cluster")
    p.add_argument("--workers", type=int, help="local worker processes (default: all cores)")
    p.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://127.0.0.1:8786")
    p.add_argument("--report", action="store_true", help="write report.html next to the results at the end")
    add_format_option(p)
    p.set_defaults(func=run_sweep_command)


def add_report_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="one self-contained HTML page from a sweep or a testbed run")
    p.add_argument("results", help="results.parquet, a sweep folder or a `testbed run` folder")
    p.add_argument("--out", help="HTML file (default: report.html next to the results)")
    p.add_argument("--format", dest="figure_formats", metavar="png,pdf,svg", default=None,
                   help="also write the report's figures in these formats to report-figures/ next to the page")
    p.set_defaults(func=run_report_command)


def run_sweep_command(args: argparse.Namespace) -> int:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from testbed.errors import SweepError
    from testbed.sweep.runner import run_sweep
    from testbed.sweep.spec import load_sweep

    spec = load_sweep(args.spec)
    if args.workers is not None and args.workers < 1:
        raise SweepError(f"--workers {args.workers}: must be at least 1")
    if args.executor == "dask" and not args.scheduler:
        raise SweepError("--executor dask needs --scheduler ADDRESS")
    if args.executor == "dask":
        from testbed.sweep.runner import connect_dask

        connect_dask(args.scheduler).close()  # unreachable: one line, before anything runs
    out = Path(args.out) if args.out else Path("results") / "sweeps" / spec.name
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[label]}")]
    with Progress(*columns, transient=False, console=None) as progress:
        task = progress.add_task(spec.name, total=None, label="")

        def on_progress(done: int, total: int, label: str) -> None:
            progress.update(task, completed=done, total=total, label=label[:60])

        outcome = run_sweep(spec, out, args.executor, args.workers, args.scheduler, on_progress)
    print(f"{outcome.ran} points ran, {outcome.skipped} already done, {outcome.total} in all, "
          f"{outcome.wall_s:.1f} s; results: {outcome.results_path}")
    if outcome.failed:
        print(f"{outcome.failed} of the points that ran failed; their rows carry the reason in the error column",
              file=sys.stderr)
    if args.report:
        from testbed.report import build_report

        print(f"report: {build_report(outcome.results_path.parent)}")
    return 0


def run_report_command(args: argparse.Namespace) -> int:
    from testbed.report import build_report

    path = build_report(args.results, args.out)
    print(f"report written to {path}", file=sys.stdout)
    return 0
