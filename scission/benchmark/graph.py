"""Split analysis: where a Keras functional model can be cut so that one tensor crosses, and its blocks.

Layer positions are the indices of ``model.layers`` (the input layer is position 0, as in the original
Scission's profiles). A cut *after* position ``p`` is valid when

- no tensor flows backwards (produced after ``p`` and consumed at or before ``p``: a layer used twice
  whose second call reads a later tensor forbids every cut between the two), and
- exactly one tensor produced at positions ``<= p`` is still needed after ``p`` (consumed by a later
  layer or returned as a model output), so no parallel branch is open.

This module reads only the model's graph (layers, nodes and their tensors); it never imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scission.errors import BenchmarkError


@dataclass(frozen=True)
class BlockSpec:
    """One block of a model: layers ``first_layer..last_layer`` and the nodes that run them, in order."""

    index: int
    first_layer: int
    last_layer: int
    layer_names: tuple[str, ...]
    param_count: int
    output_shape: tuple[int | None, ...]
    output_dtype: str
    nodes: tuple[Any, ...]
    input_tensor: Any
    output_tensor: Any


@dataclass(frozen=True)
class SplitAnalysis:
    """The valid cuts of a model (cut after layer position ``p``) and the blocks they form."""

    layer_count: int
    cuts: tuple[int, ...]
    blocks: tuple[BlockSpec, ...]


def _model_nodes(model: Any) -> list[Any]:
    """Nodes of the model's own graph in an execution order (deepest first, as Keras runs them)."""
    by_depth = getattr(model, "_nodes_by_depth", None)
    if by_depth is None:
        raise BenchmarkError(
            f"model {getattr(model, 'name', model)!r} is not a Keras functional model; "
            "split analysis needs its layer graph (build it with keras.Model(inputs, outputs) or a built Sequential)"
        )
    nodes = []
    for depth in sorted(by_depth, reverse=True):
        nodes.extend(by_depth[depth])
    return nodes


def _crossing_counts(layer_count: int, intervals: Sequence[tuple[int, int]]) -> list[int]:
    """How many intervals [start, end) cover each position, via a difference array."""
    diff = [0] * (layer_count + 1)
    for start, end in intervals:
        if end > start:
            diff[start] += 1
            diff[min(end, layer_count)] -= 1
    counts, running = [], 0
    for position in range(layer_count):
        running += diff[position]
        counts.append(running)
    return counts


def graph_model(model: Any) -> Any:
    """The functional graph behind a model: a built Sequential keeps one, with its input layer at position 0."""
    functional = getattr(model, "_functional", None)
    if functional is not None:
        return functional
    if type(model).__name__ == "Sequential":
        raise BenchmarkError(f"Sequential model {model.name!r} is not built; give its first layer an input shape")
    return model


def analyse(model: Any) -> SplitAnalysis:
    """Find the valid cuts of ``model`` and form its blocks.

    Raises:
        BenchmarkError: the model is not a functional graph or has several inputs or outputs.
    """
    model = graph_model(model)
    layers = list(model.layers)
    layer_count = len(layers)
    position = {id(layer): i for i, layer in enumerate(layers)}
    if len(model.inputs) != 1:
        raise BenchmarkError(f"model {model.name!r} has {len(model.inputs)} inputs; scission profiles one-input models")
    nodes = _model_nodes(model)

    producer: dict[int, int] = {}
    tensors: dict[int, Any] = {}
    for node in nodes:
        op = node.operation
        if id(op) not in position:
            raise BenchmarkError(f"model {model.name!r}: operation {op.name!r} is not one of its layers")
        for tensor in node.outputs:
            producer[id(tensor)] = position[id(op)]
            tensors[id(tensor)] = tensor
    for tensor in model.inputs:
        producer.setdefault(id(tensor), 0)
        tensors[id(tensor)] = tensor

    last_use: dict[int, int] = {}
    first_use: dict[int, int] = {}
    for node in nodes:
        if node.is_input:
            continue
        here = position[id(node.operation)]
        for tensor in node.input_tensors:
            key = id(tensor)
            if key not in producer:
                raise BenchmarkError(f"model {model.name!r}: layer {node.operation.name!r} reads a tensor from outside the model")
            last_use[key] = max(last_use.get(key, -1), here)
            first_use[key] = min(first_use.get(key, layer_count), here)
    for tensor in model.outputs:
        last_use[id(tensor)] = layer_count  # model outputs stay live to the end

    # A tensor is live across cut p when producer <= p < last_use; backward when first_use <= p < producer.
    live = _crossing_counts(layer_count, [(producer[k], last_use[k]) for k in last_use])
    backward = _crossing_counts(layer_count, [(first_use[k], producer[k]) for k in first_use])
    leading_inputs = 0
    while leading_inputs < layer_count and type(layers[leading_inputs]).__name__ == "InputLayer":
        leading_inputs += 1
    # A block of input layers alone computes nothing; the original tool merged it into block 0 too.
    cuts = tuple(p for p in range(leading_inputs, layer_count - 1) if live[p] == 1 and backward[p] == 0)

    crossing: dict[int, Any] = {}
    for key, end in last_use.items():
        for p in cuts:
            if producer[key] <= p < end:
                crossing[p] = tensors[key]
    blocks = []
    bounds = [-1, *cuts, layer_count - 1]
    for index in range(len(bounds) - 1):
        first, last = bounds[index] + 1, bounds[index + 1]
        block_nodes = tuple(
            n for n in nodes if not n.is_input and first <= position[id(n.operation)] <= last
        )
        input_tensor = model.inputs[0] if index == 0 else crossing[bounds[index]]
        output_tensor = model.outputs[0] if last == layer_count - 1 else crossing[last]
        if index == len(bounds) - 2 and len(model.outputs) != 1:
            raise BenchmarkError(f"model {model.name!r} has {len(model.outputs)} outputs; scission profiles one-output models")
        names = tuple(layers[i].name for i in range(first, last + 1))
        params = sum(int(layers[i].count_params()) for i in range(first, last + 1) if layers[i].built)
        blocks.append(
            BlockSpec(
                index=index,
                first_layer=first,
                last_layer=last,
                layer_names=names,
                param_count=params,
                output_shape=tuple(output_tensor.shape),
                output_dtype=str(output_tensor.dtype),
                nodes=block_nodes,
                input_tensor=input_tensor,
                output_tensor=output_tensor,
            )
        )
    return SplitAnalysis(layer_count=layer_count, cuts=cuts, blocks=tuple(blocks))
