"""`scission` command line: a thin layer over scission.partition and scission.benchmark.

Only this module prints. Any ScissionError (and bad flags) becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scission import resources
from scission.errors import ConstraintError, ScissionError
from scission.plots import add_format_option, parse_formats

PLOT_TOP_K = 5  # configurations compared on the --plot figure

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2) instead of usage text plus a line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def _key_values(items: list[str] | None, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        tier, sep, value = item.partition("=")
        if not sep or not tier.strip():
            raise ConstraintError(f"{flag} {item!r}: expected TIER=VALUE")
        out[tier.strip()] = value
    return out


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="best configurations of a model from profiles and a network table",
        description="Rank configurations (which tier runs which blocks) of MODEL by predicted latency.",
    )
    p.add_argument("folder", type=resources.arg_type("data"),
                   help="folder of profiles: legacy <tier>-<name>.dat files and/or *.scission folders, "
                   "or a shipped one by name (legacy: the original tool's data)")
    p.add_argument("network", help="network CSV (source,destination,ping(ms),bandwidth(mbps)); "
                   "a relative name is looked up in FOLDER first")
    p.add_argument("model", help="model name, e.g. vgg19")
    p.add_argument("-d", "--device", help="device criteria: N, !N, -1, !-1, name, !name, name:X, !name:X "
                   "(comma-separated; name:X is the resource X even when X is a number)")
    p.add_argument("-e", "--edge", help="edge criteria")
    p.add_argument("-c", "--cloud", help="cloud criteria")
    p.add_argument("--device-upload", metavar="MB", help="cap on the bytes the device sends onward (MB = 10^6 bytes)")
    p.add_argument("--edge-upload", metavar="MB", help="cap on the bytes the edge sends onward")
    p.add_argument("--device-time", metavar="S|P%", help="cap on device compute: seconds or P%% of total compute")
    p.add_argument("--edge-time", metavar="S|P%", help="cap on edge compute")
    p.add_argument("--cloud-time", metavar="S|P%", help="cap on cloud compute")
    p.add_argument("--result-count", "-rc", dest="result_count", type=int, default=5, metavar="K",
                   help="how many configurations to print (default 5)")
    p.add_argument("-i", "--input", dest="input_size", metavar="MB", default=None,
                   help="input size sent when the device runs no block (default: the profiles' stored input "
                   "bytes; 0.15 MB for legacy .dat files, which store none)")
    p.add_argument("--tiers", default="device,edge,cloud",
                   help="ordered tiers to use (default device,edge,cloud); e.g. device,gateway,edge,cloud")
    p.add_argument("--criteria", action="append", metavar="TIER=SPEC", help="criteria for any tier (repeatable)")
    p.add_argument("--upload", action="append", metavar="TIER=MB", help="upload cap for any tier (repeatable)")
    p.add_argument("--time", action="append", metavar="TIER=S|P%", help="compute cap for any tier (repeatable)")
    p.add_argument("--exact-transfers", action="store_true",
                   help="always charge a hop's bytes; by default a hop followed by zero compute time carries "
                   "no bytes, as in the original tool")
    p.add_argument("--json", action="store_true", help="print the configurations as JSON")
    p.add_argument("--plot", metavar="FILE", help="write a plot of the top configurations (format from the suffix: "
                   ".png, .pdf or .svg; or --format)")
    add_format_option(p)
    p.set_defaults(func=_predict)


def _resolve_network(folder: Path, network: str) -> Path:
    candidate = Path(network)
    if not candidate.is_absolute() and (folder / candidate).is_file():
        return folder / candidate
    return candidate


def _predict(args: argparse.Namespace) -> int:
    from scission.constraints import build_constraints, parse_megabytes
    from scission.explain import constraint_warnings, explain_empty
    from scission.network import load_network_csv
    from scission.partition import build_problem, model_input_size, search_problem
    from scission.profile_folder import load_profiles
    from scission.report import as_dict, format_line
    from scission.search import search

    parse_formats(args.figure_formats)  # a bad --format: one line before the search runs
    if args.result_count < 1:
        raise ConstraintError(f"--result-count {args.result_count}: must be at least 1")
    tiers = [t.strip() for t in args.tiers.split(",") if t.strip()]
    if not tiers or len(set(tiers)) != len(tiers):
        raise ConstraintError(f"--tiers {args.tiers!r}: give distinct tier names, in order")
    criteria = {"device": args.device, "edge": args.edge, "cloud": args.cloud}
    uploads = {"device": args.device_upload, "edge": args.edge_upload}
    times = {"device": args.device_time, "edge": args.edge_time, "cloud": args.cloud_time}
    criteria.update(_key_values(args.criteria, "--criteria"))
    uploads.update(_key_values(args.upload, "--upload"))
    times.update(_key_values(args.time, "--time"))
    for flags in (criteria, uploads, times):
        for tier, value in list(flags.items()):
            if value is not None and tier not in tiers:
                if tier in ("device", "edge", "cloud"):
                    raise ConstraintError(f"--{tier} given, but {tier} is not in --tiers {args.tiers}")
                raise ConstraintError(f"unknown tier {tier!r}; tiers are {', '.join(tiers)}")
    constraints = build_constraints(criteria, uploads, times)
    given_bytes = None if args.input_size is None else parse_megabytes(args.input_size, "-i/--input")

    folder = Path(args.folder)
    profiles = load_profiles(folder)
    network = load_network_csv(_resolve_network(folder, args.network))
    in_tiers = [p for p in profiles if p.resource.tier in tiers]
    size = model_input_size(in_tiers, args.model, tiers[0], given_bytes)
    if size.note:
        print(f"scission: note: {size.note} (give -i to choose)", file=sys.stderr)
    problem = build_problem(
        profiles, network, args.model, tiers, constraints, size.size_bytes, legacy_zero_rule=not args.exact_transfers
    )
    for warning in constraint_warnings(problem, args.model.lower(), tiers):
        print(f"scission: warning: {warning}", file=sys.stderr)
    configs = search_problem(problem, args.result_count)
    # relaxed problems may allow pairs the network lacks: the search itself skips those (no network check)
    explanation = [] if configs else explain_empty(problem, search)
    if args.plot and configs:
        from scission.plots import figure_formats, plot_configuration

        with figure_formats(args.figure_formats):
            plot_configuration(problem, configs[0], args.plot, title=args.model, others=configs[1:PLOT_TOP_K])
    if args.json:
        print(json.dumps([as_dict(rank, c, size) for rank, c in enumerate(configs, start=1)], indent=2))
        if not configs:
            print("No results for the specified configuration", file=sys.stderr)
            for line in explanation:
                print(line, file=sys.stderr)
        return 0
    if not configs:
        print("No results for the specified configuration")
        for line in explanation:
            print(line)
        return 0
    for rank, config in enumerate(configs, start=1):
        print(format_line(rank, config))
    if args.plot:
        from scission.plots import figure_paths

        written = figure_paths(args.plot, parse_formats(args.figure_formats))
        print(f"plot written to {', '.join(str(p) for p in written)}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="scission", description="Benchmark DNNs block by block and find where to cut them.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_predict(sub)
    from scission.benchmark import cli as benchmark_cli  # argparse only; TensorFlow loads inside run()

    benchmark_cli.add_parser(sub)
    from scission.benchmark import recalibrate  # argparse only; TensorFlow loads inside run()

    recalibrate.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ScissionError as exc:
        print(f"scission: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("scission: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
