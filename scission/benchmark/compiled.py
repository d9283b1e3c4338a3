"""A model's block range as one compiled callable, the way a deployment serves it.

``compile_range`` builds the range [first, last] of a model's blocks in one runtime
(``scission.runtimes``). A range that a runtime cannot convert falls back to the TensorFlow graph with a
note saying why (never an error): the caller prints the note. TensorFlow is imported lazily.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


BUILDERS: dict[str, Callable[..., Callable[[np.ndarray], np.ndarray]]] = {
    runtimes.EAGER: _eager,
    runtimes.TF_FUNCTION: _tf_function,
}


def compile_range(blocks: Sequence[BlockSpec], runtime: str, example: np.ndarray, graph: Any = None,
                  threads: int | None = None) -> CompiledRange:
    """Compile ``blocks`` (contiguous) in ``runtime`` for inputs shaped like ``example``, and call it once.

    Raises:
        UnknownRuntime: ``runtime`` is not a runtime name.
    """
    runtimes.check_runtime(runtime, allow_auto=False)
    started = time.perf_counter()
    note = None
    used = runtime
    try:
        fn = BUILDERS[runtime](blocks, graph, example, threads)
        fn(example)
    except Exception as exc:  # a converter's failure is a fallback, not an error
        if runtime == runtimes.FALLBACK:
            raise
        note = f"{runtime} cannot run blocks {blocks[0].index}-{blocks[-1].index}: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}; using {runtimes.FALLBACK}"
        used = runtimes.FALLBACK
        fn = BUILDERS[used](blocks, graph, example, threads)
        fn(example)
    return CompiledRange(used, runtime, time.perf_counter() - started, fn, note)
