"""`scission recalibrate`: a few whole passes on this machine now, and a rescaled copy of a profile.

Argument checks (profile folder, model, runtime, target folder) run before TensorFlow is imported, so
bad input costs nothing; the passes themselves (``whole_passes``, shared with the node agent's
``recalibrate`` op) import it lazily. The rescaling is ``scission.recalibration`` (pure).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scission.errors import BenchmarkError

# Default: passes until they span MIN_WINDOW_S, at least one. Under a CFS quota a pass shorter than a few
# scheduling periods (100 ms) lands anywhere between a burst on fresh quota and a throttled stall: one
# 94 ms mobilenetv2 pass at 0.5 CPU read 2.45x the profile where a full re-benchmark read 1.93x, and the
# median of three 1.97x (benchmarks/results/recalibration.md). A pass that long alone is enough.
MIN_WINDOW_S = 0.3
AUTO_MAX_PASSES = 10
MAX_PASSES = 100


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "recalibrate",
        help="rescale a profile from a few whole passes on this machine now (instead of a full benchmark)",
        description="Run N whole passes of MODEL here, in the profile's runtime, and write a NEW profile whose "
        "block latencies are rescaled by now / then (one factor, or one per kind of block with --per-kind). "
        "The source profile is never changed.",
    )
    parser.add_argument("profile", metavar="PROFILE_DIR", help="a <tier>-<name>.scission folder")
    parser.add_argument("--model", required=True, metavar="M", help="the model to recalibrate (must be in the profile)")
    parser.add_argument("--passes", "-n", type=int, default=None, metavar="N",
                        help=f"timed whole passes (default: as many as span {MIN_WINDOW_S:g} s, at least one, at "
                        f"most {AUTO_MAX_PASSES}: one for a model whose pass is that long)")
    parser.add_argument("--runtime", metavar="R",
                        help="runtime to run the passes in (default: the one the profile was timed in)")
    parser.add_argument("--out", metavar="DIR", help="folder for the new <tier>-<name>.scission "
                        "(default: recalibrated/ beside the source; never the source itself)")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--per-kind", action="store_true", default=None,
                      help="one factor per kind of block (conv, dense, memory-bound) from passes that time the "
                      "blocks apart (the default under tf-function, where clock readings inside one compiled "
                      "call time them as the benchmark did)")
    kind.add_argument("--one-factor", dest="per_kind", action="store_false",
                      help="one factor from whole passes (the default in runtimes without an in-graph clock)")
    parser.add_argument("--model-file", metavar="PATH",
                        help="the .keras file or SavedModel of a model that is not a Keras application "
                        "(default: the file the profile records as its source)")
    parser.set_defaults(func=run)
    return parser


def _model_source(name: str, model_file: str | None, run: dict[str, Any]):
    """How to build the profiled model here: an application by name, or its file."""
    from scission.benchmark import models

    if model_file is None and name in models.APPLICATIONS:
        return models.ModelSource(name)
    recorded = run.get("source")
    path = model_file or (recorded if isinstance(recorded, str) and Path(recorded).exists() else None)
    if path is None:
        raise BenchmarkError(f"this machine cannot build model {name!r}: it is not a Keras application and the "
                             f"profile's model file {recorded!r} is not here; give --model-file")
    source = models.source_for_file(path)
    return models.ModelSource(name, source.model_file, custom_objects=run.get("custom_objects"),
                              unsafe=bool(run.get("unsafe_load")))


def whole_passes(blocks: Sequence[Any], graph: Any, example: np.ndarray, runtime: str,
                 passes: int | None) -> tuple[Any, list[float]]:
    """Compile all blocks as one callable in ``runtime`` (its first call is the warm-up) and time ``passes``
    calls (None: until they span MIN_WINDOW_S); the collector is off while timing, as in the benchmark."""
    from scission.benchmark.compiled import compile_range

    compiled = compile_range(blocks, runtime, example, graph)
    samples: list[float] = []
    enabled = gc.isenabled()
    gc.disable()
    try:
        while _more(samples, passes):
            started = time.perf_counter()
            compiled(example)
            samples.append(time.perf_counter() - started)
    finally:
        if enabled:
            gc.enable()
    return compiled, samples


def _more(pass_s: Sequence[float], passes: int | None) -> bool:
    """Another pass? ``passes`` of them, or (None) until they span MIN_WINDOW_S, at least one."""
    if passes is not None:
        return len(pass_s) < passes
    return not pass_s or (sum(pass_s) < MIN_WINDOW_S and len(pass_s) < AUTO_MAX_PASSES)


def _stamped_passes(blocks: Sequence[Any], graph: Any, example: np.ndarray,
                    passes: int | None) -> tuple[float, list[float], int] | None:
    """tf-function: one compiled call per pass with a clock reading between blocks, as the compiled benchmark
    times blocks (net of the per-call overhead); None where that benchmark is not in this checkout."""
    try:
        from scission.benchmark.compiled_timing import _instrumented_chain
    except ImportError:
        return None
    import tensorflow as tf

    fn = _instrumented_chain(blocks, graph, example)
    x = tf.convert_to_tensor(example)
    started = time.perf_counter()
    fn(x)
    compile_s = time.perf_counter() - started
    per_block: list[list[float]] = [[] for _ in blocks]
    totals: list[float] = []
    with _gc_paused():
        while _more(totals, passes):
            started = time.perf_counter()
            _, stamps = fn(x)
            totals.append(time.perf_counter() - started)
            stamps = stamps.numpy()
            for i in range(len(blocks)):
                per_block[i].append(float(stamps[i + 1] - stamps[i]))
    return compile_s, [float(np.median(s)) for s in per_block], len(totals)


@contextlib.contextmanager
def _gc_paused():
    """No cyclic collection while timing, as the benchmark does (a full collection outlasts a pass)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _block_passes(blocks: Sequence[Any], graph: Any, example: np.ndarray, runtime: str,
                  passes: int | None) -> tuple[float, list[float], str | None, int]:
    """Each block its own compiled callable, chained; per block the median of ``passes`` timed passes."""
    from scission.benchmark.compiled import compile_range

    compile_s, callables, value, notes = 0.0, [], example, []
    for block in blocks:
        compiled = compile_range([block], runtime, value, graph)
        compile_s += compiled.compile_s
        if compiled.note:
            notes.append(compiled.note)
        callables.append(compiled)
        value = compiled(value)
    per_block: list[list[float]] = [[] for _ in blocks]
    totals: list[float] = []
    with _gc_paused():
        while _more(totals, passes):
            value = example
            totals.append(0.0)
            for i, fn in enumerate(callables):
                started = time.perf_counter()
                value = fn(value)
                per_block[i].append(time.perf_counter() - started)
                totals[-1] += per_block[i][-1]
    return compile_s, [float(np.median(s)) for s in per_block], "; ".join(notes) or None, len(totals)


def measure(source: Any, runtime: str, passes: int | None, per_kind: bool):
    """Build the model, run the passes, and say what they cost apart from build and compile."""
    from scission import runtimes
    from scission.benchmark import graph as graph_mod
    from scission.benchmark import inputs, models
    from scission.recalibration import Recalibration, block_kind

    started = time.perf_counter()
    loaded = models.load(source)
    analysis = graph_mod.analyse(loaded.model)
    graph = graph_mod.graph_model(loaded.model)
    keras_input = graph.inputs[0]
    example = inputs.synthetic_input(tuple(keras_input.shape), str(keras_input.dtype), loaded.preprocess)
    kinds = tuple(block_kind(type(n.operation).__name__ for n in b.nodes) for b in analysis.blocks)
    prepare_s = time.perf_counter() - started - loaded.build_s  # split analysis + input: a serving node has them
    try:
        stamped = (_stamped_passes(analysis.blocks, graph, example, passes)
                   if per_kind and runtime == runtimes.TF_FUNCTION else None)
        block_calls = per_kind and stamped is None
        if stamped is not None:
            (compile_s, block_s, count), pass_s, note, used = stamped, [], None, runtime
        elif per_kind:
            compile_s, block_s, note, count = _block_passes(analysis.blocks, graph, example, runtime, passes)
            pass_s = []
            used = runtime if note is None else runtimes.FALLBACK
        else:
            compiled, pass_s = whole_passes(analysis.blocks, graph, example, runtime, passes)
            compile_s, block_s, note, used, count = compiled.compile_s, [], compiled.note, compiled.runtime, len(pass_s)
    except Exception as exc:  # a model that builds but cannot run here
        raise BenchmarkError(f"model {source.name} failed to run: {models.reason(exc)}") from None
    wall_s = time.perf_counter() - started
    return Recalibration(runtime=used, pass_s=tuple(pass_s),
                         cost_s=wall_s - loaded.build_s - prepare_s - compile_s, compile_s=compile_s,
                         build_s=loaded.build_s, prepare_s=prepare_s, wall_s=wall_s, kinds=kinds,
                         block_pass_s=tuple(block_s), block_calls=block_calls, note=note, passes=count)


def run(args: argparse.Namespace) -> int:
    from scission import recalibration, runtimes
    from scission.benchmark import host
    from scission.profiles import write_model

    if args.passes is not None and not 1 <= args.passes <= MAX_PASSES:
        raise BenchmarkError(f"--passes {args.passes} must be 1..{MAX_PASSES}")
    if args.runtime is not None:
        runtimes.check_runtime(args.runtime, allow_auto=False)
    profile, model = recalibration.load_source(args.profile, args.model)
    target = recalibration.target_dir(profile, args.out)
    runtime = args.runtime or model.runtime
    if args.model_file and not Path(args.model_file).exists():
        raise BenchmarkError(f"model file {args.model_file} does not exist")
    if args.model not in _known_applications() and not args.model_file:
        _model_source(args.model, None, model.run)  # fails here, before TensorFlow, when nothing can build it
    if runtime != model.runtime:
        print(f"scission: note: {args.profile} was timed in {model.runtime}, the passes run in {runtime}: "
              "the factor converts between the two", file=sys.stderr)

    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # noqa: F401  (TensorFlow's import is start-up, not recalibration cost)

    from scission.benchmark.compiled import default_threads

    if runtime != runtimes.EAGER:  # as the compiled benchmark runs: threads from the CPU quota, set before any op
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(default_threads())

    per_kind = args.per_kind if args.per_kind is not None else runtime == runtimes.TF_FUNCTION
    measured = measure(_model_source(args.model, args.model_file, model.run), runtime, args.passes, per_kind)
    if measured.note:
        print(f"scission: note: {measured.note}", file=sys.stderr)
    passes = measured.passes
    new = recalibration.rescale(model, Path(args.profile).resolve(), measured, per_kind, passes)
    if runtime != runtimes.EAGER:
        new.run["recalibrated_from"]["threads"] = default_threads()
    written = write_model(target.parent, profile.resource, new,
                          recalibration.metadata_now(profile, host.host_metadata()))
    info = new.run["recalibrated_from"]
    factor = (", ".join(f"{k} {v:.3f}" for k, v in sorted(info["factors"].items())) if per_kind
              else f"{info['factor']:.3f}")
    print(f"{args.model}: factor {factor} from {passes} pass(es) in {measured.runtime}, cost "
          f"{measured.cost_s:.2f} s = {info['cost_passes']:.2f} whole passes (build {measured.build_s:.1f} s, "
          f"compile {measured.compile_s:.1f} s apart) -> {written.parent}")
    return 0


def _known_applications() -> set[str]:
    from scission.benchmark.models import APPLICATIONS

    return set(APPLICATIONS)
