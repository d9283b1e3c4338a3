"""A model's block range as one compiled callable, the way a deployment serves it.

``compile_range`` builds the range [first, last] of a model's blocks in one runtime
(``scission.runtimes``). A range that a runtime cannot convert falls back to the TensorFlow graph with a
note saying why (never an error): the caller prints the note. TensorFlow is imported lazily.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scission import runtimes
from scission.benchmark.graph import BlockSpec


@dataclass
class CompiledRange:
    """One callable for a block range: numpy in, numpy out (batch dimension included)."""

    runtime: str  # the runtime that really runs it (the fallback when conversion failed)
    requested: str
    compile_s: float  # trace + convert + first call: what a live re-partition pays before serving
    fn: Callable[[np.ndarray], np.ndarray]
    note: str | None = None  # why it fell back, or None
    threads: int | None = None  # intra-op threads the runtime was given (None: the runtime's default)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.fn(x)


def chain(blocks: Sequence[BlockSpec], graph: Any = None) -> Callable[[Any], Any]:
    """Keras's own per-node steps through the blocks (what ``model(x)`` runs), for tracing or eager use."""
    from scission.benchmark.timing import BlockRunner

    runners = [BlockRunner(b, graph) for b in blocks]

    def run(value: Any) -> Any:
        for runner in runners:
            value = runner(value)
        return value

    return run


def _eager(blocks: Sequence[BlockSpec], graph: Any, example: np.ndarray, threads: int | None):
    import tensorflow as tf

    run = chain(blocks, graph)
    return lambda x: np.asarray(run(tf.convert_to_tensor(x)))


def _tf_function(blocks: Sequence[BlockSpec], graph: Any, example: np.ndarray, threads: int | None):
    import tensorflow as tf

    run = tf.function(chain(blocks, graph), input_signature=[tf.TensorSpec(example.shape, tf.as_dtype(example.dtype))],
                      jit_compile=False)
    return lambda x: run(tf.convert_to_tensor(x)).numpy()


def default_threads() -> int:
    """Intra-op threads for a runtime: the CPU quota rounded up (at least 1), else the CPU count."""
    from scission.benchmark.host import cpu_limit_cores

    limit = cpu_limit_cores()
    if limit:
        return max(1, math.ceil(limit))
    return os.cpu_count() or 1


def _traceable(blocks: Sequence[BlockSpec], graph: Any, example: np.ndarray):
    """A fresh (untraced) tf.function of the chain with a named input spec, as converters want it."""
    import tensorflow as tf

    spec = tf.TensorSpec(example.shape, tf.as_dtype(example.dtype), name="x")
    return tf.function(chain(blocks, graph), input_signature=[spec], jit_compile=False), spec


class _Unsupported(logging.Handler):
    """Collects tf2onnx's 'Unsupported ops' line: it logs them and carries on, leaving ops onnxruntime rejects."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Unsupported ops"):
            self.lines.append(message)


@contextlib.contextmanager
def _quiet_converters():
    """Converters log every graph rewrite (Python loggers) and MLIR/XNNPACK write to the C stderr: CLI
    output stays to our own lines. The converter's error still reaches the caller in its exception."""
    names = ("tf2onnx", "tensorflow", "absl")
    saved = [(logging.getLogger(n), logging.getLogger(n).level, logging.getLogger(n).propagate) for n in names]
    for logger, _, _ in saved:
        logger.setLevel(logging.CRITICAL)
        logger.propagate = False
    stderr_fd = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(stderr_fd, 2)
        os.close(stderr_fd)
        for logger, level, propagate in saved:
            logger.setLevel(level)
            logger.propagate = propagate


# Converting needs many copies of the weights: LiteRT's converter peaked at 17.2 GB for vgg16's 553 MB of
# float32 weights (1.9 GB before), about 28x; tf2onnx took over 200 s on it without finishing. A range
# whose estimate exceeds half the memory free now is not converted (it would take the node down with it).
# The converters also have a footprint of their own (benchmarks/results/conversion_memory.md): mobilenetv2's 14 MB raised the peak by
# 946 MB in tf2onnx and 544 MB in LiteRT, and the factor alone let a 2 GB node be killed mid-benchmark.
CONVERT_MEMORY_FACTOR = 32
CONVERT_FIXED_BYTES = 1_000_000_000


def _available_bytes() -> int | None:
    """Memory free for this process: the cgroup limit minus its usage, else MemAvailable."""
    from scission.benchmark.host import memory_limit_bytes

    free = []
    limit = memory_limit_bytes()
    if limit is not None:
        for used_file in ("/sys/fs/cgroup/memory.current", "/sys/fs/cgroup/memory/memory.usage_in_bytes"):
            try:
                free.append(limit - int(Path(used_file).read_text()))
                break
            except (OSError, ValueError):
                continue
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    return min(free) if free else None


def _check_memory(blocks: Sequence[BlockSpec]) -> None:
    weights = 4 * sum(b.param_count for b in blocks)
    free = _available_bytes()
    need = CONVERT_FIXED_BYTES + CONVERT_MEMORY_FACTOR * weights
    if free is not None and need > free / 2:
        raise MemoryError(f"converting {weights / 1e6:.0f} MB of weights needs about {need / 1e9:.1f} GB, "
                          f"more than half the {free / 1e9:.1f} GB free")


ONNX_OPSET = 17  # supported by tf2onnx 1.17 and onnxruntime 1.32


def _onnxruntime(blocks: Sequence[BlockSpec], graph: Any, example: np.ndarray, threads: int | None):
    """tf2onnx converts the traced chain in memory; onnxruntime's CPU provider runs it."""
    import onnxruntime as ort

    _check_memory(blocks)
    unsupported = _Unsupported()
    with _quiet_converters():
        import tf2onnx

        tf2onnx_logger = logging.getLogger("tf2onnx")
        tf2onnx_logger.setLevel(logging.ERROR)
        tf2onnx_logger.addHandler(unsupported)
        try:
            fn, spec = _traceable(blocks, graph, example)
            proto, _ = tf2onnx.convert.from_function(fn, input_signature=[spec], opset=ONNX_OPSET)
        finally:
            tf2onnx_logger.removeHandler(unsupported)
    if unsupported.lines:
        raise RuntimeError(f"tf2onnx: {unsupported.lines[0]}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    with _quiet_converters():
        session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    output_name = session.get_outputs()[0].name
    # InferenceSession.run is thread-safe; no lock needed.
    return lambda x: session.run([output_name], {input_name: x})[0]


def _litert(blocks: Sequence[BlockSpec], graph: Any, example: np.ndarray, threads: int | None):
    """TFLiteConverter converts the traced chain; the LiteRT interpreter (XNNPACK by default) runs it."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    _check_memory(blocks)
    with _quiet_converters():
        fn, _ = _traceable(blocks, graph, example)
        # Keras 3 variables are not tracked through ``graph`` the way the converter expects: handed the
        # concrete function as is, it keeps READ_VARIABLE ops over uninitialised buffers (garbage, NaN).
        frozen = convert_variables_to_constants_v2(fn.get_concrete_function())
        content = tf.lite.TFLiteConverter.from_concrete_functions([frozen], tf.Module()).convert()
    with _quiet_converters():  # "Created TensorFlow Lite XNNPACK delegate" on the C stderr
        interpreter = Interpreter(model_content=content, num_threads=threads)
        interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    lock = threading.Lock()  # set_tensor/invoke/get_tensor share one interpreter's buffers

    def run(x: np.ndarray) -> np.ndarray:
        with lock:
            interpreter.set_tensor(input_index, x)
            interpreter.invoke()
            return interpreter.get_tensor(output_index).copy()

    return run


BUILDERS: dict[str, Callable[..., Callable[[np.ndarray], np.ndarray]]] = {
    runtimes.EAGER: _eager,
    runtimes.TF_FUNCTION: _tf_function,
    runtimes.ONNXRUNTIME: _onnxruntime,
    runtimes.LITERT: _litert,
}



def compile_range(blocks: Sequence[BlockSpec], runtime: str, example: np.ndarray, graph: Any = None,
                  threads: int | None = None) -> CompiledRange:
    """Compile ``blocks`` (contiguous) in ``runtime`` for inputs shaped like ``example``, and call it once.

    Raises:
        UnknownRuntime: ``runtime`` is not a runtime name.
    """
    runtimes.check_runtime(runtime, allow_auto=False)
    threads = threads or default_threads()
    started = time.perf_counter()
    note = None
    used = runtime
    try:
        with _quiet_converters():  # also TensorFlow's "calls triggered tf.function retracing": each range traces once
            fn = BUILDERS[runtime](blocks, graph, example, threads)
            fn(example)
    except Exception as exc:  # a converter's failure is a fallback, not an error
        if runtime == runtimes.FALLBACK:
            raise
        note = f"{runtime} cannot run blocks {blocks[0].index}-{blocks[-1].index}: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}; using {runtimes.FALLBACK}"
        used = runtimes.FALLBACK
        with _quiet_converters():
            fn = BUILDERS[used](blocks, graph, example, threads)
            fn(example)
    # tf-function and eager run in TensorFlow's process-wide thread pools; ``threads`` is what the
    # converted runtimes were given.
    return CompiledRange(used, runtime, time.perf_counter() - started, fn, note,
                         threads if used in (runtimes.ONNXRUNTIME, runtimes.LITERT) else None)


TOLERANCE = 1e-4  # max |out - eager| allowed, relative to max |eager| (float32 runtimes); see docs/benchmark.md


def output_error(out: np.ndarray, reference: np.ndarray) -> tuple[float, bool]:
    """Max absolute error against the eager reference, and whether it is within ``TOLERANCE``.

    A wrong shape or a non-finite value never matches; the bound scales with the reference's magnitude
    because block outputs range from softmax probabilities to unnormalised activations in the thousands.
    """
    out = np.asarray(out)
    if out.shape != reference.shape or not np.all(np.isfinite(out)):
        return float("inf"), False
    error = float(np.max(np.abs(out.astype(np.float64) - reference))) if out.size else 0.0
    return error, error <= TOLERANCE * float(np.max(np.abs(reference), initial=0.0))


@dataclass
class Choice:
    """The runtime ``auto`` picked for a block range, and the side-by-side measurement that picked it."""

    runtime: str
    compiled: CompiledRange  # kept warm: the caller serves or times it without compiling again
    table: dict[str, dict[str, Any]]  # name -> whole_median_s, compile_s, max_abs_error, matches, note, samples_s
    select_s: float  # wall of the choice apart from the chosen runtime's own compile
    reference_s: float  # the one eager call the outputs were checked against


def choose_runtime(blocks: Sequence[BlockSpec], example: np.ndarray, graph: Any = None, threads: int | None = None,
                   candidates: Sequence[str] = runtimes.COMPILED, passes: int = 3) -> Choice:
    """Compile every candidate, check it against one eager call, time ``passes`` calls of each round robin
    (so host noise falls on all alike) and pick the fastest whose output matches.

    A candidate that falls back (cannot convert) is not timed: its row says why. When none matches,
    the eager reference itself serves (it matches by definition).

    Raises:
        UnknownRuntime: a candidate is not a runtime name.
    """
    for name in candidates:
        runtimes.check_runtime(name, allow_auto=False)
    started = time.perf_counter()
    reference_fn = BUILDERS[runtimes.EAGER](blocks, graph, example, threads)
    t0 = time.perf_counter()
    reference = np.asarray(reference_fn(example)).astype(np.float64)
    reference_s = time.perf_counter() - t0

    table: dict[str, dict[str, Any]] = {}
    timed: dict[str, CompiledRange] = {}
    for name in dict.fromkeys(candidates):
        compiled = compile_range(blocks, name, example, graph, threads)
        row = {"whole_median_s": None, "compile_s": compiled.compile_s, "max_abs_error": None, "matches": False,
               "note": compiled.note, "samples_s": []}
        table[name] = row
        if compiled.runtime != name:
            continue  # fell back: the fallback is measured as its own candidate
        error, ok = output_error(compiled(example), reference)
        row["max_abs_error"], row["matches"] = error, ok
        if not ok:
            row["note"] = (f"{name} output differs from eager on blocks {blocks[0].index}-{blocks[-1].index} by "
                           f"{error:.3g} (> {TOLERANCE:g} x max |eager| = {TOLERANCE * np.max(np.abs(reference)):.3g}); not used")
        timed[name] = compiled

    order = list(timed)
    for p in range(passes):
        for name in order[p % len(order):] + order[:p % len(order)] if order else []:
            t0 = time.perf_counter()
            timed[name](example)
            table[name]["samples_s"].append(time.perf_counter() - t0)
    for name in order:
        table[name]["whole_median_s"] = float(np.median(table[name]["samples_s"])) if passes else None

    eligible = [n for n in order if table[n]["matches"]]
    if eligible:
        best = min(eligible, key=lambda n: (table[n]["whole_median_s"] or 0.0))
        chosen = timed[best]
    else:
        best = runtimes.EAGER
        chosen = CompiledRange(best, best, 0.0, reference_fn, "no candidate matched eager; serving eagerly")
    return Choice(best, chosen, table, time.perf_counter() - started - chosen.compile_s, reference_s)
