"""Benchmark one model in this process and write its profile: the body of each per-model child process.

Run as ``python -m scission.benchmark.worker JOB_JSON``. It talks to the parent in lines on stdout
prefixed with ``MARKER``: progress events, then a result or an error. One process per model means
TensorFlow's memory is returned to the system when the model is done.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource as _resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from scission.benchmark.timing import ProgressFn
from scission.errors import BenchmarkError, ScissionError
from scission.profiles import Block, LatencyStats, ModelProfile, Resource, write_model

MARKER = "@@scission-benchmark "
CHAINED_TOLERANCE = 1e-4  # of max |whole output|


@dataclass(frozen=True)
class Job:
    """Everything a child needs to benchmark one model; crosses the process boundary as JSON."""

    model: str
    tier: str
    resource_name: str
    repeats: int
    out_dir: str
    metadata: dict[str, Any]
    model_file: str | None = None
    weights_path: str | None = None
    input_path: str | None = None
    custom_objects: str | None = None
    unsafe: bool = False
    runtime: str = "auto"  # scission.runtimes: auto, a compiled runtime, or eager (the original timing path)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Job:
        return cls(**json.loads(text))


def peak_rss_bytes() -> int:
    """Peak resident memory of this process (Linux reports kilobytes)."""
    return int(_resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss) * 1024


def benchmark(job: Job, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Build, analyse, time and write one model; returns the ``--json`` summary of it.

    Raises:
        BenchmarkError: the model, weights or image cannot be used.
    """
    from scission import runtimes
    from scission.benchmark import graph, inputs, models, timing

    if job.repeats < 1:
        raise BenchmarkError(f"repeats {job.repeats} must be >= 1")
    runtimes.check_runtime(job.runtime)
    eager = job.runtime == runtimes.EAGER
    source = models.ModelSource(job.model, job.model_file, job.weights_path, job.custom_objects, job.unsafe)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    loaded = models.load(source)
    analysis = graph.analyse(loaded.model)
    keras_input = graph.graph_model(loaded.model).inputs[0]
    input_shape = tuple(keras_input.shape)
    if job.input_path:
        x = inputs.image_input(job.input_path, input_shape, loaded.preprocess, job.model)
    else:
        x = inputs.synthetic_input(input_shape, str(keras_input.dtype), loaded.preprocess)
    prepared = time.perf_counter()
    try:
        if eager:
            measured = timing.measure(loaded.model, analysis.blocks, x, job.repeats, progress)
        else:
            from scission.benchmark.compiled_timing import measure_compiled

            measured = measure_compiled(loaded.model, analysis.blocks, x, job.repeats, job.runtime,
                                        progress=progress)
    except ScissionError:
        raise
    except Exception as exc:  # a model that builds but cannot run (bad shapes, custom ops...)
        raise BenchmarkError(f"model {job.model} failed to run: {models.reason(exc)}") from None
    wall_s = time.perf_counter() - started

    blocks = []
    for spec, samples, out in zip(analysis.blocks, measured.block_samples_s, measured.outputs, strict=True):
        blocks.append(
            Block(
                index=spec.index,
                first_layer=spec.first_layer,
                last_layer=spec.last_layer,
                output_bytes=out.size_bytes,
                latency=LatencyStats.from_samples(samples),
                output_npy_bytes=out.npy_bytes,
                layer_names=spec.layer_names,
                param_count=spec.param_count,
                output_shape=out.shape,
                output_dtype=out.dtype,
            )
        )
    whole = LatencyStats.from_samples(measured.whole_samples_s)
    block_sum_s = sum(b.latency.median_s for b in blocks)
    # Median of whole chained passes: tells timing noise (sum of medians drops rare stalls) from block overhead.
    pass_sums_s = [sum(samples) for samples in zip(*measured.block_samples_s, strict=True)]
    chained_pass_median_s = statistics.median(pass_sums_s)
    tolerance = CHAINED_TOLERANCE * measured.whole_max_abs_output
    run = {
        "repeats": job.repeats,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "source": job.model_file or f"keras.applications ({'weights ' + job.weights_path if job.weights_path else 'random weights'})",
        "input": job.input_path or "synthetic",
        "build_s": loaded.build_s,
        "cold_s": measured.cold_s,
        "whole_model_median_s": whole.median_s,
        "whole_model_samples_s": list(whole.samples_s),
        "block_sum_s": block_sum_s,
        # Compiled: Σ net blocks + the one call's overhead is what a tier running every block would cost.
        "block_sum_ratio": ((block_sum_s + (0.0 if eager else measured.call_overhead_s)) / whole.median_s
                            if whole.median_s else None),
        "chained_pass_median_s": chained_pass_median_s,
        "chained_max_abs_error": measured.chained_max_abs_error,
        "chained_tolerance": tolerance,
        "chained_within_tolerance": measured.chained_max_abs_error <= tolerance,
        "wall_s": wall_s,
        # Where the wall time went: build, split analysis + input, cold call, warm-up pass, the R timed repeats.
        "phases_s": {"build": loaded.build_s, "prepare": prepared - started - loaded.build_s,
                     "cold": measured.cold_s, "warmup": measured.warmup_s, "repeats": measured.repeats_s},
        "load_average_1m": [load_before, os.getloadavg()[0]],
        "overhead_ratio": (wall_s - loaded.build_s) / (job.repeats * whole.median_s) if whole.median_s else None,
        "peak_rss_bytes": peak_rss_bytes(),
        "layer_count": analysis.layer_count,
        "warmup": "the cold whole-model call (creates every kernel the blocks run)",
    }
    if eager:
        run.update({"runtime": runtimes.EAGER, "call_overhead_s": 0.0, "compile_s": 0.0, "select_s": 0.0})
    else:
        _compiled_fields(run, measured, job.repeats, whole.median_s, wall_s, loaded.build_s)
    if job.custom_objects:
        run["custom_objects"] = job.custom_objects
    if job.unsafe:
        run["unsafe_load"] = True  # Keras safe_mode=False: the file's Lambda code ran
    profile = ModelProfile(
        model=job.model,
        blocks=tuple(blocks),
        input_bytes=int(x.nbytes),
        input_shape=tuple(int(d) for d in x.shape),
        run=run,
    )
    path = write_model(job.out_dir, Resource(job.tier, job.resource_name), profile, job.metadata)
    return {
        "model": job.model,
        "tier": job.tier,
        "name": job.resource_name,
        "repeats": job.repeats,
        "blocks": [
            {"first_layer": b.first_layer, "last_layer": b.last_layer, "median_s": b.latency.median_s,
             "output_bytes": b.output_bytes}
            for b in blocks
        ],
        "whole_model_median_s": whole.median_s,
        "whole_model_samples_s": list(whole.samples_s),
        "cold_s": measured.cold_s,
        "chained_max_abs_error": measured.chained_max_abs_error,
        "chained_within_tolerance": run["chained_within_tolerance"],
        "block_sum_ratio": run["block_sum_ratio"],
        "chained_pass_median_s": chained_pass_median_s,
        "overhead_ratio": run["overhead_ratio"],
        "wall_s": wall_s,
        "build_s": loaded.build_s,
        "peak_rss_bytes": run["peak_rss_bytes"],
        "phases_s": run["phases_s"],
        "load_average_1m": run["load_average_1m"],
        "pid": os.getpid(),
        "profile": str(path),
        **{k: run[k] for k in SUMMARY_RUN_KEYS if k in run},
    }


SUMMARY_RUN_KEYS = ("runtime", "runtimes", "compile_s", "blocks_compile_s", "select_s", "call_overhead_s", "threads",
                    "notes")


def _compiled_fields(run: dict[str, Any], measured: Any, repeats: int, whole_median_s: float, wall_s: float,
                     build_s: float) -> None:
    """Format-2 fields of a compiled benchmark; compile and selection time are charged apart from the overhead."""
    compile_total_s = measured.compile_s + sum(measured.blocks_compile_s) + measured.timing_compile_s
    run.update({
        "runtime": measured.runtime,
        "runtimes": measured.runtimes_table,
        "threads": measured.threads,
        "compile_s": measured.compile_s,
        "blocks_compile_s": list(measured.blocks_compile_s),
        "timing_compile_s": measured.timing_compile_s,
        "select_s": measured.select_s,
        "call_overhead_s": measured.call_overhead_s,
        "call_overhead_samples_s": list(measured.call_overhead_samples_s),
        "chained_pass_samples_s": list(measured.pass_samples_s),
        "timing_method": measured.method,
        "notes": list(measured.notes),
        "warmup": "compiling calls every callable once (compile_s includes that first call)",
    })
    phases = run["phases_s"]
    run["phases_s"] = {"build": phases["build"], "prepare": phases["prepare"], "select": measured.select_s,
                       "compile": compile_total_s, "repeats": measured.repeats_s}
    timed_s = wall_s - build_s - compile_total_s - measured.select_s
    run["overhead_ratio"] = timed_s / (repeats * whole_median_s) if whole_median_s else None


def _emit(event: dict[str, Any]) -> None:
    sys.stdout.write(MARKER + json.dumps(event) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    job = Job.from_json(argv[0])
    try:
        # TensorFlow's import is process start-up, not benchmark time: do it before the clock starts.
        import keras  # noqa: F401
        import tensorflow

        if job.runtime != "eager":  # before TensorFlow starts its thread pools
            from scission.benchmark.compiled_timing import host_threads

            tensorflow.config.threading.set_intra_op_parallelism_threads(host_threads())

        summary = benchmark(job, progress=lambda done, total: _emit({"event": "progress", "done": done, "total": total}))
    except ScissionError as exc:
        _emit({"event": "error", "message": str(exc)})
        return 2
    _emit({"event": "result", "summary": summary})
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
