"""`testbed simulate`: run a simulation file and print or write its results (the root parser adds it).

Only this module prints; a TestbedError propagates to the root command line (one line, exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scission.plots import add_format_option
from scission.resources import arg_type as shipped
from testbed.errors import TestbedError

__all__ = ["add_simulate_parser", "print_summary_table", "simulate_command"]


def print_summary_table(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{summary['name']}: {summary['model']} on {summary['topology']}")
    for col in ("policy", "mean s", "p50 s", "p95 s (±95% CI)", "p99 s", "req/s", "switches", "final configuration",
                "overhead", "regret s", "stable"):
        table.add_column(col, justify="left" if col in ("policy", "final configuration") else "right",
                         overflow="fold")  # an id wraps rather than losing its end
    for name, e in summary["policies"].items():
        regret = e.get("regret_s")
        final = _final_config(e, len(e["seeds"]))
        table.add_row(
            name,
            f"{e['mean_s']:.4g}",
            f"{e['p50_s']:.4g}",
            f"{e['p95_s']:.4g} ± {e['p95_s_ci95']:.2g}",
            f"{e['p99_s']:.4g}",
            f"{e['throughput_per_s']:.4g}",
            f"{e['repartitions']:g}",
            final,
            f"{e['overhead_fraction'] * 100:.1f}%",
            "-" if regret is None else f"{regret:.4g}",
            "yes" if e["stable"] else "NO",
        )
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    print(f"{summary['requests']} requests simulated in {summary['wall_s']:.2f} s wall "
          f"({summary['requests_per_s']:,.0f} simulated requests/s)")


def _final_config(entry: dict, seeds: int) -> str:
    """The configuration a policy ran at the end ('device=ID;dev2=ID' per device, the name dropped with one
    device), and how many seeds ended there when they differ."""
    text = entry.get("final_config") or "-"
    parts = text.split(";")
    if len(parts) == 1 and "=" in text:
        text = text.split("=", 1)[1]
    else:
        text = "; ".join(parts)
    ended = entry.get("final_config_seeds", seeds)
    return text if ended == seeds else f"{text} ({ended}/{seeds} seeds)"


def simulate_command(args: argparse.Namespace) -> int:
    from testbed.sim.output import to_jsonable, write_outputs
    from testbed.sim.runner import run_simulation
    from testbed.sim.spec import load_simulation

    spec = load_simulation(args.file)
    if args.seeds:
        try:
            seeds = tuple(int(s) for s in args.seeds.split(","))
        except ValueError:
            raise TestbedError(f"--seeds {args.seeds!r} must be integers separated by commas") from None
        spec = spec.model_copy(update={"seeds": seeds})
    if args.records:
        spec = spec.model_copy(update={"records": True})
    if args.requests:
        spec = spec.with_stop(requests=args.requests)
    progress_cb = None
    progress = None
    if sys.stderr.isatty() and not args.json:
        from rich.progress import Progress

        progress = Progress(transient=True)
        task = progress.add_task("simulating", total=len(spec.policies) * len(spec.seeds))
        progress.start()

        def progress_cb(done, total, label):
            progress.update(task, completed=done, description=label)

    try:
        result = run_simulation(spec, progress=progress_cb)
    finally:
        if progress is not None:
            progress.stop()
    out = Path(args.out) if args.out else None
    if out is not None:
        write_outputs(result, out, plots=not args.no_plots)
    if args.json:
        print(json.dumps(to_jsonable(result.summary), indent=2, sort_keys=True))
    else:
        print_summary_table(result.summary)
        if out is not None:
            print(f"results in {out}/")
    for name, e in result.summary["policies"].items():
        if not e["stable"]:
            print(f"testbed simulate: policy {name} is unstable: {e['unstable_reason']}", file=sys.stderr)
    return 0


def add_simulate_parser(sub) -> None:
    p = sub.add_parser("simulate", help="replay profiles in a SimPy model under varied bandwidth and load",
                       description="Run a simulation file (experiments/sim-*.yaml): every policy under every seed.")
    p.add_argument("file", type=shipped("experiments"), help="simulation YAML file, or a shipped example by name "
                   "(sim-four-tier; python -m scission.resources lists them)")
    p.add_argument("--out", help="folder for summary.json, Parquet tables and plots")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--seeds", help="override the file's seeds, e.g. 1,2,3")
    p.add_argument("--requests", type=int, help="override the stop rule: stop after this many requests")
    p.add_argument("--records", action="store_true", help="keep one row per request (requests.parquet)")
    p.add_argument("--no-plots", action="store_true", help="skip the plots")
    add_format_option(p)
    p.set_defaults(func=simulate_command)
