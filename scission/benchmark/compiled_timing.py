"""Timing a model's blocks in a compiled runtime so that any contiguous range of them adds up.

A deployment serves each tier's block range as one compiled callable, so a profile must say what a
range costs *compiled as one*. Timing each block as its own compiled callable does not say that here:
one ``tf.function`` call costs 0.5-1 ms on this 2-core host (dispatch plus numpy <-> tensor
conversion, more for big tensors), so mobilenetv2's 75 blocks called one by one took 168 ms against
54 ms for the whole model in one call, and the overhead, mis-attributed by a constant, broke the
±10% range predictions both ways (-30% .. +59%) and cost 3 x R passes.

Instead, for ``tf-function`` each timed pass is ONE compiled call of the chained blocks with a
``tf.timestamp`` op between blocks, pinned by control dependencies (every op of block i+1, its
variable reads too, waits for the stamp after block i's output). A cut lets exactly one tensor cross,
so nothing of block i+1 could overlap block i anyway: the stamps read the clock where the graph
already serialises. Right before each pass a trivial callable of the model's input size (an identity
layer, compiled in the same runtime) is called and timed. So per pass:

- the per-call overhead c = the trivial call: dispatch plus numpy -> tensor -> numpy, what any range's
  call pays once. Taking c from the big pass itself (wall - span of the readings) gave 3.1 ms for
  mobilenetv2's full graph against 1.1 ms for the trivial call, and over-predicted one-block ranges by
  up to +144%: the rest grows with the graph (executor set-up and tear-down of its ops);
- block i's latency = stamp[i+1] - stamp[i] plus its share, by node count, of that rest (the call's
  wall time - span - c): net of c, and Σ blocks + c is the pass's own call;
- a range i..j compiled as one then costs Σ block latencies + c, which ``benchmarks/compiled_blocks.py``
  checks against ranges compiled and timed as one callable (means, as the search adds them).

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
CONVERSION_CALLS = 3  # identity calls at two sizes that measure the per-byte conversion cost
MATCH_TOLERANCE = 1e-4  # of max |eager output|: a runtime whose output differs more does not match


def host_threads() -> int:
    """Intra-op threads for this resource: ceil of the CPU quota, else the CPU count (one rule, in compiled)."""
    from scission.benchmark.compiled import default_threads

    return default_threads()


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
    timing_compile_s: float  # the rest of the compile phase: instrumented pass, trivial callable, the loop
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
    # numpy <-> runtime conversion per byte, from identity callables at the input size and at the largest
    # cut: a range's call pays it for its own input and output bytes, which one call_overhead_s cannot carry
    # (a one-block range with a 4.8 MB output ran 25% over Σ + c in mobilenetv2). None: no cut much larger.
    conversion_s_per_byte: float | None = None

    @property
    def cold_s(self) -> float:
        return self.compile_s  # the whole model's first call is part of its compile time

    @property
    def warmup_s(self) -> float:
        return 0.0

    @property
    def call_overhead_s(self) -> float:
        """The mean, as block latencies are added up as means (``LatencyStats.typical_s``)."""
        return statistics.fmean(self.call_overhead_samples_s) if self.call_overhead_samples_s else 0.0


def choose(blocks: Sequence[BlockSpec], example: np.ndarray, graph: Any, threads: int, requested: str,
           passes: int = 3) -> Choice:
    """The runtime to time in: ``compiled.choose_runtime`` among the compiled ones under ``auto``; a runtime
    named alone is compiled and checked against eager the same way, with no rivals measured."""
    from scission.benchmark.compiled import choose_runtime

    if requested != runtimes.AUTO:
        return _named(blocks, example, graph, threads, requested, passes)
    picked = choose_runtime(blocks, example, graph, threads, list(runtimes.COMPILED), passes)
    table = {name: {k: v for k, v in row.items() if k != "samples_s"} | {"samples_s": list(row.get("samples_s", []))}
             for name, row in picked.table.items()}
    notes = [row["note"] for row in picked.table.values() if row.get("note")]
    if picked.compiled.note:
        notes.append(picked.compiled.note)
    return Choice(picked.runtime, picked.compiled, table, picked.select_s, notes)


def _named(blocks: Sequence[BlockSpec], example: np.ndarray, graph: Any, threads: int, requested: str,
           passes: int) -> Choice:
    """One runtime, asked for by name: compiled (falling back to tf-function with a note when it cannot
    convert), checked against one eager call and timed ``passes`` times; no rival is measured."""
    from scission.benchmark.compiled import BUILDERS, compile_range, output_error

    started = time.perf_counter()
    reference = np.asarray(BUILDERS[runtimes.EAGER](blocks, graph, example, threads)(example)).astype(np.float64)
    compiled = compile_range(blocks, requested, example, graph, threads)
    error, ok = output_error(compiled(example), reference)
    samples = []
    for _ in range(passes):
        begin = time.perf_counter()
        compiled(example)
        samples.append(time.perf_counter() - begin)
    table = {compiled.runtime: {"whole_median_s": statistics.median(samples) if samples else None,
                                "compile_s": compiled.compile_s, "max_abs_error": error, "matches": ok,
                                "note": compiled.note, "samples_s": samples}}
    notes = [compiled.note] if compiled.note else []
    if not ok:
        notes.append(f"{compiled.runtime} output differs from eager by {error:.3g}; timed anyway (asked for by name)")
    return Choice(compiled.runtime, compiled, table, time.perf_counter() - started - compiled.compile_s, notes)


def _instrumented_chain(blocks: Sequence[BlockSpec], graph: Any, example: np.ndarray) -> Callable[[Any], Any]:
    """One tf.function through all blocks that also returns a clock reading before and after each block."""
    import tensorflow as tf

    runners = [BlockRunner(b, graph) for b in blocks]

    def run(x: Any) -> Any:
        stamp = tf.timestamp()
        stamps = [stamp]
        value = x
        for runner in runners:
            # Every op of the block (its variable reads too) waits for the stamp before it: without this
            # the graph reads all weights before the first stamp, which counted as call overhead.
            with tf.control_dependencies([stamp]):
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
        started = time.perf_counter()
        choice = choose(blocks, x, graph, threads, requested)
        choice.select_s = time.perf_counter() - started - choice.whole.compile_s  # all of it, not just the rivals
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
    compile_started = clock()
    compiled_blocks = [compile_range([block], runtime, example, graph, threads)
                       for block, example in zip(blocks, _block_examples(blocks, x), strict=True)]
    blocks_compile_s = [c.compile_s for c in compiled_blocks]
    notes.extend(c.note for c in compiled_blocks if c.note)
    total = repeats + 1
    if progress:
        progress(1, total)

    chained = chained_pass_fn(blocks, x, graph, runtime, threads, compiled_blocks)
    del compiled_blocks
    method, chained_pass = chained.method, chained.run
    examples = _block_examples(blocks, x)
    largest = max(examples[1:], key=lambda e: e.nbytes, default=x)
    identities = (_trivial(x, runtime, threads), _trivial(largest, runtime, threads)) \
        if largest.nbytes > 2 * x.nbytes else None
    # All of this phase is compile work: the instrumented pass, the trivial callable, and the loop around
    # the block compiles (examples, freeing them), which Σ blocks_compile_s alone left in the overhead.
    timing_compile_s = clock() - compile_started - sum(blocks_compile_s)

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
    conversion = None
    if identities:  # after the passes, counted in the overhead: 2 x CONVERSION_CALLS identity calls
        small, big = ([], [])
        for _ in range(CONVERSION_CALLS):
            for fn, value, samples in ((identities[0], x, small), (identities[1], largest, big)):
                begin = clock()
                fn(value)
                samples.append(clock() - begin)
        # An identity call converts its bytes in and out: per byte crossing one way.
        conversion = max(statistics.median(big) - statistics.median(small), 0.0) / (2 * (largest.nbytes - x.nbytes))
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
        repeats_s=repeats_s, method=method, notes=tuple(dict.fromkeys(notes)), conversion_s_per_byte=conversion,
    )


@dataclass
class ChainedPass:
    """A timed pass through every block: returns (output, net block times, call overhead) per call."""

    run: Callable[[], tuple[np.ndarray, list[float], float]]
    compile_s: float
    method: str


def chained_pass_fn(blocks: Sequence[BlockSpec], x: np.ndarray, graph: Any, runtime: str,
                    threads: int, compiled_blocks: Sequence[Any] | None = None) -> ChainedPass:
    """How blocks are timed in ``runtime`` (see the module docstring); compiled and called once here.
    ``compiled_blocks`` (one CompiledRange per block) saves compiling them again where the blocks are
    timed one call each."""
    from scission.benchmark.compiled import compile_range

    clock = time.perf_counter
    started = clock()
    if runtime == runtimes.TF_FUNCTION:
        import tensorflow as tf

        instrumented = _instrumented_chain(blocks, graph, x)
        instrumented(tf.convert_to_tensor(x))
        trivial = _trivial(x, runtime, threads)
        nodes = np.array([max(len(b.nodes), 1) for b in blocks], dtype="float64")
        shares = nodes / nodes.sum()

        def run() -> tuple[np.ndarray, list[float], float]:
            begin = clock()
            trivial(x)
            fixed = clock() - begin
            begin = clock()
            out, stamps = instrumented(tf.convert_to_tensor(x))
            out = out.numpy()
            wall = clock() - begin
            stamps = stamps.numpy()
            # Outside the clock readings beyond a trivial call's cost: per-op set-up and tear-down of the
            # graph's executor, which a range pays for its own ops; shared out by node count.
            excess = max(wall - float(stamps[-1] - stamps[0]) - fixed, 0.0)
            return out, [float(d) for d in np.diff(stamps) + excess * shares], fixed

        return ChainedPass(run, clock() - started,
                           "one compiled call per pass with in-graph clock readings between blocks; call overhead "
                           "= a trivial callable's call in the same pass, the rest outside the readings shared "
                           "out by node count")
    fns = list(compiled_blocks) if compiled_blocks else [
        compile_range([b], runtime, e, graph, threads) for b, e in zip(blocks, _block_examples(blocks, x), strict=True)]
    overhead = _trivial_overhead(x, runtime, threads)

    def run_blocks() -> tuple[np.ndarray, list[float], float]:
        value = x
        times = []
        for fn in fns:
            begin = clock()
            value = fn(value)
            times.append(max(clock() - begin - overhead, 0.0))
        return value, times, overhead

    return ChainedPass(run_blocks, clock() - started,
                       "one compiled call per block, chained with numpy; call overhead from a trivial callable")


def _trivial(x: np.ndarray, runtime: str, threads: int) -> Any:
    """An identity-like callable of the model's input size in ``runtime``: its call is the per-call overhead."""
    import keras

    from scission.benchmark.compiled import compile_range
    from scission.benchmark.graph import analyse

    inp = keras.Input(x.shape[1:], dtype=str(x.dtype))
    trivial = keras.Model(inp, keras.layers.Activation("linear")(inp))
    return compile_range(analyse(trivial).blocks, runtime, x, graph_model(trivial), threads)


def _trivial_overhead(x: np.ndarray, runtime: str, threads: int, calls: int = 20) -> float:
    """Median call time of ``_trivial`` (after its first call)."""
    fn = _trivial(x, runtime, threads)
    samples = []
    for _ in range(calls):
        begin = time.perf_counter()
        fn(x)
        samples.append(time.perf_counter() - begin)
    return statistics.median(samples)
