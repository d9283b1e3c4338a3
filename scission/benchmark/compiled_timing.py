"""Timing a model's blocks in a compiled runtime so that any contiguous range of them adds up.

A deployment serves each tier's block range as one compiled callable, so a profile must say what a
range costs *compiled as one*. Timing each block as its own compiled callable does not say that here:
one ``tf.function`` call costs 0.5-1 ms on this 2-core host (dispatch plus numpy <-> tensor
conversion, more for big tensors), so mobilenetv2's 75 blocks called one by one took 168 ms against
54 ms for the whole model in one call, and the overhead, mis-attributed by a constant, broke the
±10% range predictions both ways (-30% .. +59%) and cost 3 x R passes.

Instead, for ``tf-function`` each timed pass is ONE compiled call of the chained blocks with a
``tf.timestamp`` op between blocks, pinned by control dependencies (the stamp runs after block i's
output exists, block i+1 starts after the stamp). A cut lets exactly one tensor cross, so nothing of
block i+1 could overlap block i anyway: the stamps only read the clock where the graph already
serialises. So per pass:

- block i's latency = stamp[i+1] - stamp[i]: the block's work inside a compiled callable, net of any
  per-call cost by construction;
- the per-call overhead c = call wall time - (stamp[n] - stamp[0]): dispatch and the numpy conversion
  of the input and output, measured in every pass (R samples), not fitted;
- a range i..j compiled as one then costs Σ block latencies + c, which ``benchmarks/compiled_blocks.py``
  checks against ranges compiled and timed as one callable.

The whole model (its own compiled callable, the profile's reference) is timed ceil(R/4) times,
interleaved with the passes so host noise falls on both. The cost is then about R + R/4 passes.
Every block is also compiled alone once (``blocks_compile_s``: what a live re-partition pays), which
is compile time, recorded apart and not part of the overhead.

Runtimes without an in-graph clock (onnxruntime, litert) time each block as its own compiled callable,
chained with numpy, and take c from a trivial callable of the model's input size in the same runtime;
that path pays one call per block per pass.
"""

from __future__ import annotations

import gc
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scission import runtimes
from scission.benchmark.graph import BlockSpec, graph_model
from scission.benchmark.timing import BlockOutput, BlockRunner, ProgressFn, _describe

WHOLE_EVERY = 4  # one whole-model call per this many chained passes (ceil(R/4) whole calls)
MATCH_TOLERANCE = 1e-4  # of max |eager output|: a runtime whose output differs more does not match


def host_threads() -> int:
    """Intra-op threads for this resource: ceil of the CPU quota, else the CPU count."""
    from scission.benchmark.host import cpu_limit_cores

    limit = cpu_limit_cores()
    return max(1, math.ceil(limit)) if limit else (os.cpu_count() or 1)


@dataclass
class Choice:
    """The runtime a model is timed in, its compiled whole model and the table that chose it."""

    runtime: str
    whole: Any  # CompiledRange of every block
    table: dict[str, dict[str, Any]]
    select_s: float
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CompiledMeasurement:
    """Every sample of one compiled benchmark of a model, in seconds."""

    runtime: str
    runtimes_table: dict[str, dict[str, Any]]
    threads: int
    select_s: float
    compile_s: float
    blocks_compile_s: tuple[float, ...]
    timing_compile_s: float  # the instrumented chained pass (tf-function) or 0
    call_overhead_samples_s: tuple[float, ...]
    whole_samples_s: tuple[float, ...]
    block_samples_s: tuple[tuple[float, ...], ...]  # net of the call overhead
    pass_samples_s: tuple[float, ...]  # wall time of each timed chained pass (its calls included)
    outputs: tuple[BlockOutput, ...]
    chained_max_abs_error: float
    whole_max_abs_output: float
    repeats_s: float
    method: str
    notes: tuple[str, ...] = ()

    @property
    def cold_s(self) -> float:
        return self.compile_s  # the whole model's first call is part of its compile time

    @property
    def warmup_s(self) -> float:
        return 0.0

    @property
    def call_overhead_s(self) -> float:
        return statistics.median(self.call_overhead_samples_s) if self.call_overhead_samples_s else 0.0


def _local_choose(blocks: Sequence[BlockSpec], example: np.ndarray, graph: Any, threads: int,
                  candidates: Sequence[str], passes: int) -> Choice:
    """Until ``compiled.choose_runtime`` exists: compile the first candidate (tf-function under auto)."""
    from scission.benchmark.compiled import compile_range

    started = time.perf_counter()
    wanted = candidates[0] if len(candidates) == 1 else runtimes.FALLBACK
    whole = compile_range(blocks, wanted, example, graph, threads)
    samples = []
    for _ in range(passes):
        begin = time.perf_counter()
        whole(example)
        samples.append(time.perf_counter() - begin)
    table = {whole.runtime: {"whole_median_s": statistics.median(samples) if samples else None,
                             "compile_s": whole.compile_s, "max_abs_error": None, "matches": None,
                             "note": whole.note}}
    return Choice(whole.runtime, whole, table, time.perf_counter() - started - whole.compile_s,
                  [whole.note] if whole.note else [])


def choose(blocks: Sequence[BlockSpec], example: np.ndarray, graph: Any, threads: int, requested: str,
           passes: int = 3) -> Choice:
    """The runtime to time in: measured among the compiled ones under ``auto``, else the one asked for."""
    candidates = list(runtimes.COMPILED) if requested == runtimes.AUTO else [requested]
    try:
        from scission.benchmark.compiled import choose_runtime  # the runtimes helper's measurement
    except ImportError:
        return _local_choose(blocks, example, graph, threads, candidates, passes)
    return _adapt(choose_runtime(blocks, example, graph, threads, candidates, passes))


def _adapt(result: Any) -> Choice:
    if isinstance(result, Choice):
        return result
    raise TypeError(f"unexpected choose_runtime result {type(result).__name__}")


def _instrumented_chain(blocks: Sequence[BlockSpec], graph: Any, example: np.ndarray) -> Callable[[Any], Any]:
    """One tf.function through all blocks that also returns a clock reading before and after each block."""
    import tensorflow as tf

    runners = [BlockRunner(b, graph) for b in blocks]

    def run(x: Any) -> Any:
        stamp = tf.timestamp()
        stamps = [stamp]
        value = x
        for runner in runners:
            with tf.control_dependencies([stamp]):
                value = tf.identity(value)
            value = runner(value)
            with tf.control_dependencies([value]):
                stamp = tf.timestamp()
            stamps.append(stamp)
        return value, tf.stack(stamps)

    return tf.function(run, input_signature=[tf.TensorSpec(example.shape, tf.as_dtype(example.dtype))],
                       jit_compile=False)


def _block_examples(blocks: Sequence[BlockSpec], x: np.ndarray) -> list[np.ndarray]:
    """An input for compiling each block alone: the model input, then zeros shaped like each cut."""
    examples = [x]
    for block in blocks[:-1]:
        shape = (x.shape[0], *(int(d) for d in block.output_shape[1:]))
        examples.append(np.zeros(shape, dtype=np.dtype(block.output_dtype)))
    return examples


def measure_compiled(model: Any, blocks: Sequence[BlockSpec], x: np.ndarray, repeats: int, requested: str,
                     threads: int | None = None, progress: ProgressFn | None = None) -> CompiledMeasurement:
    """Choose the runtime, compile the whole model and each block, then time R chained passes and
    ceil(R/4) whole calls interleaved; keeps every sample."""
    graph = graph_model(model)
    threads = threads or host_threads()
    gc_was_enabled = gc.isenabled()
    gc.disable()  # as timeit does; a full collection with TensorFlow loaded outlasts a small model's pass
    try:
        choice = choose(blocks, x, graph, threads, requested)
        return _measure(blocks, x, graph, repeats, threads, choice, progress)
    finally:
        if gc_was_enabled:
            gc.enable()


def _measure(blocks: Sequence[BlockSpec], x: np.ndarray, graph: Any, repeats: int, threads: int, choice: Choice,
             progress: ProgressFn | None) -> CompiledMeasurement:
    from scission.benchmark.compiled import compile_range

    clock = time.perf_counter
    runtime = choice.runtime
    notes = list(choice.notes)
    blocks_compile_s = []
    for block, example in zip(blocks, _block_examples(blocks, x), strict=True):
        compiled = compile_range([block], runtime, example, graph, threads)
        blocks_compile_s.append(compiled.compile_s)
        if compiled.note:
            notes.append(compiled.note)
    total = repeats + 1
    if progress:
        progress(1, total)

    if runtime == runtimes.TF_FUNCTION:
        import tensorflow as tf

        started = clock()
        instrumented = _instrumented_chain(blocks, graph, x)
        instrumented(tf.convert_to_tensor(x))
        timing_compile_s = clock() - started
        method = "one compiled call per pass with in-graph clock readings between blocks"

        def chained_pass() -> tuple[Any, list[float], float]:
            begin = clock()
            out, stamps = instrumented(tf.convert_to_tensor(x))
            out = out.numpy()
            wall = clock() - begin
            stamps = stamps.numpy()
            return out, list(np.diff(stamps)), wall - float(stamps[-1] - stamps[0])
    else:
        timing_compile_s = 0.0
        method = "one compiled call per block, chained with numpy; call overhead from a trivial callable"
        fns = []
        for block, example in zip(blocks, _block_examples(blocks, x), strict=True):
            fns.append(compile_range([block], runtime, example, graph, threads))
        overhead = _trivial_overhead(x, runtime, threads)

        def chained_pass() -> tuple[Any, list[float], float]:
            value = x
            times = []
            for fn in fns:
                begin = clock()
                value = fn(value)
                times.append(max(clock() - begin - overhead, 0.0))
            return value, times, overhead

    whole: list[float] = []
    per_block: list[list[float]] = [[] for _ in blocks]
    passes: list[float] = []
    overheads: list[float] = []
    whole_out = chained_out = None
    repeats_started = clock()
    for repeat in range(repeats):
        if repeat % WHOLE_EVERY == 0:
            begin = clock()
            whole_out = choice.whole(x)
            whole.append(clock() - begin)
        begin = clock()
        chained_out, times, overhead = chained_pass()
        passes.append(clock() - begin)
        overheads.append(overhead)
        for samples, t in zip(per_block, times, strict=True):
            samples.append(float(t))
        if progress:
            progress(repeat + 2, total)
    repeats_s = clock() - repeats_started

    reference = np.asarray(whole_out)
    error = float(np.max(np.abs(np.asarray(chained_out, dtype="float64") - reference))) if reference.size else 0.0
    shapes = [_describe(np.empty((x.shape[0], *(int(d) for d in b.output_shape[1:])), np.dtype(b.output_dtype)))
              for b in blocks]
    return CompiledMeasurement(
        runtime=runtime, runtimes_table=choice.table, threads=threads, select_s=choice.select_s,
        compile_s=choice.whole.compile_s, blocks_compile_s=tuple(blocks_compile_s),
        timing_compile_s=timing_compile_s, call_overhead_samples_s=tuple(overheads),
        whole_samples_s=tuple(whole), block_samples_s=tuple(tuple(s) for s in per_block),
        pass_samples_s=tuple(passes), outputs=tuple(shapes), chained_max_abs_error=error,
        whole_max_abs_output=float(np.max(np.abs(reference))) if reference.size else 0.0,
        repeats_s=repeats_s, method=method, notes=tuple(dict.fromkeys(notes)),
    )


def _trivial_overhead(x: np.ndarray, runtime: str, threads: int, calls: int = 20) -> float:
    """Median call time of an identity-like callable of the model's input size in ``runtime``."""
    import keras

    from scission.benchmark.compiled import compile_range
    from scission.benchmark.graph import analyse

    inp = keras.Input(x.shape[1:], dtype=str(x.dtype))
    trivial = keras.Model(inp, keras.layers.Activation("linear")(inp))
    fn = compile_range(analyse(trivial).blocks, runtime, x, graph_model(trivial), threads)
    samples = []
    for _ in range(calls):
        begin = time.perf_counter()
        fn(x)
        samples.append(time.perf_counter() - begin)
    return statistics.median(samples)
