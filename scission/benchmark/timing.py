"""Timing a model and its blocks so that the blocks add up to the whole.

Both are run the same way: eagerly, layer call by layer call, exactly as Keras's own ``model(x)``
runs a functional graph, sharing one tensor dict per pass as Keras does. Each repeat times one
whole-model call and one chained pass through the blocks, with a clock reading between blocks (no
rebuilt sub-models, no per-block ``predict``), so the benchmark costs 2R inferences plus the cold
first call, which warms up the whole model and every block alike (it creates every kernel they run).
Whole and chained pass alternate which goes first, so background load and cache effects fall on both.
"""

from __future__ import annotations

import gc
import io
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scission.benchmark.graph import BlockSpec, graph_model

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class BlockOutput:
    """What one block hands to the next: its shape and dtype, exact bytes and ``numpy.save`` bytes."""

    shape: tuple[int, ...]
    dtype: str
    size_bytes: int
    npy_bytes: int


@dataclass(frozen=True)
class Measurement:
    """Every sample of one benchmark of a model, in seconds."""

    cold_s: float
    warmup_s: float
    repeats_s: float
    whole_samples_s: tuple[float, ...]
    block_samples_s: tuple[tuple[float, ...], ...]
    outputs: tuple[BlockOutput, ...]
    chained_max_abs_error: float
    whole_max_abs_output: float


def npy_size_bytes(shape: Sequence[int], dtype: str) -> int:
    """Bytes ``numpy.save`` writes for an array of this shape and dtype (header + raw data), without writing it."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape)}
    )
    return len(header.getvalue()) + math.prod(shape) * np.dtype(dtype).itemsize


def _describe(value: Any) -> BlockOutput:
    shape = tuple(int(d) for d in value.shape)
    dtype = np.dtype(value.dtype.as_numpy_dtype if hasattr(value.dtype, "as_numpy_dtype") else value.dtype).name
    return BlockOutput(shape, dtype, math.prod(shape) * np.dtype(dtype).itemsize, npy_size_bytes(shape, dtype))


class BlockRunner:
    """Runs one block's nodes eagerly with Keras's own per-node steps (``Functional._run_through_graph``).

    In a chained pass every block writes into one tensor dict, so intermediates stay alive until the
    pass ends exactly as they do inside ``model(x)``; freeing them block by block made densenets' blocks
    ~6% faster than the model they came from.
    """

    def __init__(self, block: BlockSpec, graph: Any = None):
        from keras import tree
        from keras.src.models.functional import operation_fn

        get_operation = getattr(graph, "_get_operation_for_node", None) or (lambda node: node.operation)
        self._input_id = id(block.input_tensor)
        self._output_id = id(block.output_tensor)
        self._nodes = block.nodes
        self._get_operation = get_operation
        self._operation_fn = operation_fn
        self._flatten = tree.flatten

    def run_into(self, tensors: dict[int, Any]) -> Any:
        """Run the block reading and writing ``tensors`` (tensor id -> value); returns the block's output."""
        flatten, operation_fn, get_operation = self._flatten, self._operation_fn, self._get_operation
        for node in self._nodes:
            if any(id(x) not in tensors for x in node.input_tensors):
                raise KeyError(f"block input missing for layer {node.operation.name}")
            args, kwargs = node.arguments.fill_in(tensors)
            outputs = operation_fn(get_operation(node), training=False)(*args, **kwargs)
            for x, y in zip(node.outputs, flatten(outputs), strict=True):
                tensors[id(x)] = y
        return tensors[self._output_id]

    def __call__(self, value: Any) -> Any:
        return self.run_into({self._input_id: value})


def measure(model: Any, blocks: Sequence[BlockSpec], x: Any, repeats: int,
            progress: ProgressFn | None = None, warmup_passes: int = 0) -> Measurement:
    """Cold whole call, ``warmup_passes`` untimed chained passes, then ``repeats`` alternating (whole call,
    chained block pass) pairs; keeps every timed sample.

    The cold call is every block's warm-up too: it creates each kernel, at each shape, that the blocks
    run. An extra untimed chained pass after it ran at the median pass time (mobilenetv2 79 vs 85 ms,
    resnet50 220 vs 215 ms, vgg16 156 vs 155 ms), so it is off by default; it cost 0.1 x R inferences.
    """
    import tensorflow as tf

    graph = graph_model(model)
    runners = [BlockRunner(b, graph) for b in blocks]
    x = tf.convert_to_tensor(x)
    input_id = id(blocks[0].input_tensor)

    # As timeit does: no cyclic garbage collection while timing (reference counting still frees every tensor).
    # With TensorFlow loaded a full collection takes ~0.3 s, longer than a whole mobilenetv2 inference.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _measure(model, runners, x, input_id, repeats, progress, warmup_passes)
    finally:
        if gc_was_enabled:
            gc.enable()


def _measure(model: Any, runners: Sequence[BlockRunner], x: Any, input_id: int, repeats: int,
             progress: ProgressFn | None, warmup_passes: int) -> Measurement:
    clock = time.perf_counter
    total = repeats + 1
    started = clock()
    model(x, training=False)
    cold_s = clock() - started
    if progress:
        progress(1, total)

    whole: list[float] = []
    per_block: list[list[float]] = [[] for _ in runners]
    stamps = [0.0] * (len(runners) + 1)
    whole_out = chained_out = None
    outputs: list[Any] = []

    def whole_call() -> None:
        nonlocal whole_out
        begin = clock()
        whole_out = model(x, training=False)
        whole.append(clock() - begin)

    def chained_pass() -> None:
        nonlocal chained_out, outputs
        tensors = {input_id: x}
        values = []
        stamps[0] = clock()
        for i, runner in enumerate(runners):
            values.append(runner.run_into(tensors))
            stamps[i + 1] = clock()
        for i in range(len(runners)):
            per_block[i].append(stamps[i + 1] - stamps[i])
        chained_out, outputs = values[-1], values

    warmup_started = clock()
    for _ in range(warmup_passes):
        chained_pass()
    for samples in per_block:
        samples.clear()
    warmup_s = clock() - warmup_started

    repeats_started = clock()
    for repeat in range(repeats):
        first, second = (whole_call, chained_pass) if repeat % 2 == 0 else (chained_pass, whole_call)
        first()
        second()
        if progress:
            progress(repeat + 2, total)
    repeats_s = clock() - repeats_started

    reference = np.asarray(whole_out)
    error = float(np.max(np.abs(np.asarray(chained_out, dtype="float64") - reference))) if reference.size else 0.0
    return Measurement(
        cold_s=cold_s,
        warmup_s=warmup_s,
        repeats_s=repeats_s,
        whole_samples_s=tuple(whole),
        block_samples_s=tuple(tuple(s) for s in per_block),
        outputs=tuple(_describe(v) for v in outputs),
        chained_max_abs_error=error,
        whole_max_abs_output=float(np.max(np.abs(reference))) if reference.size else 0.0,
    )
