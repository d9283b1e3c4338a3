"""`scission benchmark` argument parsing and output; must not import TensorFlow at module import time.

The work happens in one child process per model (``scission.benchmark.session``); this module checks
the input first, so a bad flag fails before any model is built, then shows progress and summaries.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from scission.plots import add_format_option, parse_formats

DEFAULT_REPEATS = 10
BLOCK_SUM_BAND = (0.9, 1.1)  # Σ block medians / whole median outside this: the timings are not to be trusted


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "benchmark",
        help="profile Keras models block by block on this machine",
        description="Time each block of Keras models (split where one tensor crosses) and the whole model, "
        "and write a profile that `scission predict` reads.",
    )
    parser.add_argument("--tier", required=True, help="tier of this machine: device, edge, cloud, ...")
    parser.add_argument("--name", required=True, help="name of this machine within its tier")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", nargs="+", action="extend", metavar="M",
                       help="Keras application(s), e.g. vgg16 mobilenetv2; repeat the flag or list several")
    which.add_argument("--all", action="store_true", help="all 18 Keras applications, one process each")
    which.add_argument("--model-file", action="append", metavar="PATH",
                       help="a .keras file or a SavedModel directory; repeat the flag for several models")
    parser.add_argument("--custom-objects", metavar="MODULE",
                        help="module name or .py file defining the model files' custom layers: its custom_objects "
                        "dict and every class it registers with keras.saving.register_keras_serializable")
    parser.add_argument("--unsafe", action="store_true",
                        help="load model files with Keras safe_mode=False, so Lambda layers run the Python code "
                        "stored in the file (only for files you trust)")
    parser.add_argument("--repeats", "-r", type=int, default=DEFAULT_REPEATS, metavar="R",
                        help=f"timed runs of the whole model and of each block (default {DEFAULT_REPEATS})")
    parser.add_argument("--input", metavar="IMG", help="image to feed (resized and preprocessed the model's way); "
                        "default: a deterministic synthetic image")
    parser.add_argument("--weights", metavar="PATH", help="local weights file for the model (default: random weights)")
    parser.add_argument("--out", default="profiles", metavar="DIR",
                        help="folder for <tier>-<name>.scission profiles (default ./profiles)")
    parser.add_argument("--runtime", default="auto", metavar="NAME",
                        help="runtime to time blocks and model in: auto (the fastest compiled runtime whose output "
                        "matches eager), tf-function, onnxruntime, litert, or eager (layer by layer, the old path); "
                        "default auto")
    parser.add_argument("--json", action="store_true", help="print a JSON summary per model on stdout")
    parser.add_argument("--plot", metavar="DIR", help="write per-block latency / output size plots to DIR")
    add_format_option(parser)
    parser.set_defaults(func=run)
    return parser


def _jobs(args: argparse.Namespace) -> list[Any]:
    """Check every flag and build one job per model, before anything runs."""
    from pathlib import Path

    from scission.benchmark import host, inputs, models
    from scission.benchmark.worker import Job
    from scission.errors import BenchmarkError
    from scission.profiles import Resource
    from scission.runtimes import EAGER, check_runtime

    check_runtime(args.runtime)
    if args.repeats < 1:
        raise BenchmarkError(f"--repeats {args.repeats} must be at least 1")
    Resource(args.tier, args.name)
    if (args.custom_objects or args.unsafe) and not args.model_file:
        flag = "--custom-objects" if args.custom_objects else "--unsafe"
        raise BenchmarkError(f"{flag} applies to --model-file only (Keras applications are built here, not loaded)")
    if args.custom_objects:
        models.check_custom_objects(args.custom_objects)
    if args.model_file:
        files = list(dict.fromkeys(args.model_file))
        if args.weights and len(files) != 1:
            raise BenchmarkError(f"--weights fits one model, but {len(files)} model files were given")
        sources = [models.source_for_file(f, args.weights, args.custom_objects, args.unsafe) for f in files]
        seen: dict[str, str] = {}
        for s in sources:
            if s.name in seen:
                raise BenchmarkError(f"model files {seen[s.name]} and {s.model_file} are both named {s.name!r} "
                                     "(one profile entry each); rename one")
            seen[s.name] = s.model_file
    else:
        names = models.known_models() if args.all else list(dict.fromkeys(args.model))
        for name in names:
            models.check_application(name)
        if args.weights and len(names) != 1:
            raise BenchmarkError(f"--weights fits one model, but {len(names)} models were asked for")
        sources = [models.ModelSource(name, weights_path=args.weights) for name in names]
    if args.weights and not Path(args.weights).is_file():
        raise BenchmarkError(f"weights file {args.weights} does not exist")
    if args.input:
        inputs.check_image(args.input)
    metadata = host.host_metadata()
    if args.runtime != EAGER:
        metadata["execution"] = "compiled block ranges (the runtime of each model is its run.runtime)"
    return [
        Job(model=s.name, tier=args.tier, resource_name=args.name, repeats=args.repeats, out_dir=args.out,
            metadata=metadata, model_file=s.model_file, weights_path=s.weights_path, input_path=args.input,
            custom_objects=s.custom_objects, unsafe=s.unsafe, runtime=args.runtime)
        for s in sources
    ]


def _ratio(summary: dict[str, Any]) -> str:
    ratio = summary.get("block_sum_ratio")
    return "n/a" if ratio is None else f"{ratio:.3f}"


def block_sum_warning(summary: dict[str, Any]) -> str | None:
    """Blocks timed apart should add up to the whole model; far off means a noisy host, not the model."""
    ratio = summary.get("block_sum_ratio")
    low, high = BLOCK_SUM_BAND
    if ratio is None or low <= ratio <= high:
        return None
    load = summary.get("load_average_1m") or []
    during = f" (1-minute load average {max(load):.2f})" if load else ""
    return (f"warning: {summary['model']}: Σ blocks / whole = {ratio:.3f}, outside {low}–{high}: timings on this "
            f"host were noisy{during}; rerun on a quiet host or with more --repeats before trusting this profile")


def _describe(summary: dict[str, Any]) -> str:
    runtime = summary.get("runtime", "eager")
    compiled = ""
    if runtime != "eager":
        compiled = (f", compile {summary['compile_s']:.1f} s (+ blocks {sum(summary['blocks_compile_s']):.1f} s), "
                    f"call overhead {summary['call_overhead_s'] * 1000:.2f} ms")
    return (
        f"{summary['model']} [{runtime}]: {len(summary['blocks'])} blocks, whole model "
        f"{summary['whole_model_median_s'] * 1000:.1f} ms (median of {len(summary.get('whole_model_samples_s', [])) or summary['repeats']}), "
        f"Σ blocks / whole {_ratio(summary)}, chained error {summary['chained_max_abs_error']:.2g}, "
        f"overhead {summary['overhead_ratio']:.2f} x R{compiled}, "
        f"wall {summary['wall_s']:.1f} s, build {summary['build_s']:.1f} s -> {summary['profile']}"
    )


def _plot(summary: dict[str, Any], plot_dir: str, formats: tuple[str, ...] | None = None) -> str:
    from scission.benchmark.plot import plot_model
    from scission.profiles import read_profile

    profile = read_profile(summary["profile"].rsplit("/", 1)[0])
    return ", ".join(str(p) for p in plot_model(profile.models[summary["model"]], profile.resource, plot_dir,
                                                formats=formats))


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from scission.benchmark.session import run_jobs

    parse_formats(args.figure_formats)  # a bad --format: one line before anything runs
    jobs = _jobs(args)
    console = Console(stderr=True)
    summaries: list[dict[str, Any]] = []
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True,
                      disable=not console.is_terminal, redirect_stdout=False, redirect_stderr=False) as bar:
            overall = bar.add_task(f"{len(jobs)} model(s)", total=len(jobs))
            tasks = {j.model: bar.add_task(f"  {j.model} (cold + {j.repeats} repeats)", total=j.repeats + 1,
                                           start=False)
                     for j in jobs}
            started: set[str] = set()

            def say(line: str) -> None:
                """Results go to stdout; above the live bars when both share a terminal."""
                if console.is_terminal and sys.stdout.isatty():
                    bar.console.print(line, highlight=False, soft_wrap=True)
                else:
                    print(line, flush=True)

            def progress(job: Any, done: int, total: int) -> None:
                if job.model not in started:  # the clock of a model starts when its child does
                    started.add(job.model)
                    bar.start_task(tasks[job.model])
                bar.update(tasks[job.model], completed=done, total=total)

            for summary in run_jobs(jobs, progress):
                summaries.append(summary)
                bar.advance(overall)
                bar.update(tasks[summary["model"]], completed=summary["repeats"] + 1)
                if not args.json:
                    say(_describe(summary))
                for note in summary.get("notes") or ():  # a runtime that could not convert: said, not an error
                    bar.console.print(f"note: {summary['model']}: {note}", highlight=False, soft_wrap=True)
                warning = block_sum_warning(summary)
                if warning:
                    bar.console.print(warning, highlight=False, soft_wrap=True)
                if not summary["chained_within_tolerance"]:
                    bar.console.print(f"warning: chaining the blocks of {summary['model']} differs from the whole "
                                      f"model by {summary['chained_max_abs_error']:.3g}", highlight=False)
                if args.plot:
                    path = _plot(summary, args.plot, parse_formats(args.figure_formats))
                    if not args.json:
                        say(f"  plot -> {path}")
    finally:
        if args.json:
            print(json.dumps(summaries, indent=2))
            sys.stdout.flush()
    return 0
