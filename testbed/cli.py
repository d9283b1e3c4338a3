"""Command line for the testbed: a thin argparse layer, one ``add_*_parser`` function per sub-command.

Any TestbedError (bad input) becomes one line on stderr and exit status 2; results already written stay.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from scission.plots import add_format_option
from testbed.errors import TestbedError
from testbed.run.cli import add_run_parser
from testbed.sim.cli import add_simulate_parser


def _cmd_compare(args: argparse.Namespace) -> int:
    from testbed.compare import compare_run, write_compare

    table = compare_run(Path(args.run_dir), seeds=tuple(range(1, args.seeds + 1)), reply=not args.no_reply)
    out = Path(args.out) if args.out else Path(args.run_dir) / "compare"
    written = write_compare(table, out)
    if args.json:
        print(table.to_json(orient="records", indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=f"simulated vs predicted vs measured: {args.run_dir}")
        cols = ["config", "measured_s", "simulated_s", "predicted_s", "sim_error_pct", "pred_error_pct", "within_15pct"]
        for c in cols:
            t.add_column(c, justify="left" if c == "config" else "right")
        for row in table.itertuples(index=False):
            t.add_row(*[f"{getattr(row, c):.4g}" if isinstance(getattr(row, c), float) else str(getattr(row, c))
                        for c in cols])
        Console(width=None if sys.stdout.isatty() else 160).print(t)
        print(f"table and plot in {out}/: {', '.join(p.name for p in written)}")
    return 0


def add_compare_parser(sub) -> None:
    p = sub.add_parser("compare", help="simulated vs predicted vs measured latency for a `testbed run` folder",
                       description="Simulate each configuration of a run folder at the run's load, with its "
                                   "profiles and link probes, and set it beside scission's prediction and the measurement.")
    p.add_argument("run_dir", help="replay folder of a `testbed run`: RUN_DIR/<model>")
    p.add_argument("--out", help="where to write compare.csv/compare.parquet/compare.png (default RUN_DIR/compare)")
    p.add_argument("--seeds", type=int, default=3, help="simulation seeds per configuration (default 3)")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    add_format_option(p)
    p.add_argument("--no-reply", action="store_true",
                   help="do not simulate carrying the result back to the device (the run's requests include it)")
    p.set_defaults(func=_cmd_compare)


def _cmd_tour(args: argparse.Namespace) -> int:
    from testbed.tour import TourOptions, run_tour

    out = Path(args.out) if args.out else Path("results") / f"tour-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    opts = TourOptions(out=out, experiment=Path(args.experiment), simulation=Path(args.simulation),
                       requests=args.requests, repeats=args.repeats, top_k=args.top_k,
                       native=False if args.no_native else None, no_docker=args.no_docker)
    result = run_tour(opts, lambda stage, detail: print(f"{stage}: {detail}", flush=True))
    table = result.table
    shown = [c for c in ("label", "config", "predicted_s", "simulated_s", "during_dip_mean_s", "measured_s")
             if c in table]
    print(table[shown].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"report: {result.report}")
    return 0


def _shown(path: Path) -> str:
    """A shipped file as the user would type it: relative to the current folder when inside it."""
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def add_tour_parser(sub) -> None:
    from testbed.tour import DEFAULT_EXPERIMENT, DEFAULT_SIMULATION

    p = sub.add_parser("tour", help="the main job: predict, simulate under a dip, measure on three emulated tiers, "
                                    "compare, one HTML report",
                       description="Predict the top configurations of a small model, simulate them under a bandwidth "
                                   "dip, run them on an emulated three-tier topology (skipped, in one line, without "
                                   "root or a Docker Engine), compare the three and write one self-contained HTML page.")
    p.add_argument("--out", help="results folder (default results/tour-<UTC time>); the page is OUT/report.html")
    p.add_argument("--experiment", default=_shown(DEFAULT_EXPERIMENT),
                   help="`testbed run` experiment file (default experiments/run-three-tier.yaml); its first model")
    p.add_argument("--simulation", default=_shown(DEFAULT_SIMULATION),
                   help="simulation file with the dip (default experiments/sim-three-tier-dip.yaml)")
    p.add_argument("--requests", type=int, help="measured requests per configuration (default: the experiment's)")
    p.add_argument("--repeats", type=int, help="benchmark repeats per node (default: the experiment's)")
    p.add_argument("--top-k", type=int, help="top configurations to follow (default: the experiment's)")
    p.add_argument("--no-native", action="store_true", help="leave out the single-tier configurations")
    p.add_argument("--no-docker", action="store_true", help="do not measure: predict, simulate and report only")
    p.set_defaults(func=_cmd_tour)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2) instead of usage text plus a line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="testbed", description="Experiments: measured split inference, simulation and sweeps.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    add_simulate_parser(sub)
    add_compare_parser(sub)
    add_run_parser(sub)
    from testbed.sweep.cli import add_report_parser, add_sweep_parser

    add_sweep_parser(sub)
    add_report_parser(sub)
    add_tour_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    from emulator.errors import EmulatorError
    from scission.errors import ScissionError
    from scission.plots import figure_formats

    try:
        with figure_formats(getattr(args, "figure_formats", None)):  # every plot the command writes
            return args.func(args)
    except (TestbedError, EmulatorError, ScissionError) as exc:
        print(f"testbed {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"testbed {args.command}: interrupted; results written so far are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
