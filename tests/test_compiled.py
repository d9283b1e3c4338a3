"""Compiled runtimes: each matches eager on a block range, a range that cannot convert falls back with a
line saying so, and ``choose_runtime`` never picks a runtime whose output is wrong."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from scission import runtimes
from scission.benchmark import compiled
from scission.benchmark.compiled import TOLERANCE, choose_runtime, compile_range, output_error
from scission.benchmark.graph import analyse, graph_model
from scission.errors import UnknownRuntime

pytestmark = pytest.mark.tf


def _tiny():
    """in -> conv -> conv -> pool -> dense: a few blocks of ops every converter knows."""
    keras.utils.set_random_seed(0)
    x = keras.Input(shape=(12, 12, 3), name="in")
    y = layers.Conv2D(8, 3, activation="relu", name="c1")(x)
    y = layers.Conv2D(8, 3, padding="same", name="c2")(y)
    y = layers.BatchNormalization(name="bn")(y)
    y = layers.GlobalAveragePooling2D(name="pool")(y)
    y = layers.Dense(5, name="out")(y)
    return keras.Model(x, y, name="tiny")


class NumpyDouble(layers.Layer):
    """Doubles its input through tf.numpy_function: a Python callback no converter can carry."""

    def call(self, x):
        y = tf.numpy_function(lambda a: (2 * a).astype(np.float32), [x], tf.float32)
        y.set_shape(x.shape)
        return y


def _with_numpy_function():
    keras.utils.set_random_seed(0)
    x = keras.Input(shape=(6,), name="in")
    y = layers.Dense(6, name="a")(x)
    y = NumpyDouble(name="np")(y)
    y = layers.Dense(3, name="b")(y)
    return keras.Model(x, y, name="numpyfn")


def _example(model, seed=1):
    return np.random.default_rng(seed).normal(size=(1, *model.input_shape[1:])).astype("float32")


def _eager(blocks, x, graph):
    return compile_range(blocks, runtimes.EAGER, x, graph)(x)


@pytest.mark.parametrize("runtime", runtimes.COMPILED)
def test_each_runtime_matches_eager_on_a_block_range(runtime):
    model = _tiny()
    graph, blocks = graph_model(model), analyse(model).blocks[1:]  # a range that does not start at the input
    x = np.random.default_rng(2).normal(size=(1, *blocks[0].input_tensor.shape[1:])).astype("float32")
    reference = _eager(blocks, x, graph)
    fn = compile_range(blocks, runtime, x, graph, threads=1)
    assert (fn.runtime, fn.requested, fn.note) == (runtime, runtime, None)
    assert fn.compile_s > 0
    assert fn.threads == (None if runtime == runtimes.TF_FUNCTION else 1)
    out = fn(x)
    assert out.shape == reference.shape and output_error(out, reference)[1]
    assert np.max(np.abs(reference)) > 0.01  # a test of numerics, not of zeros


@pytest.mark.parametrize("runtime", [runtimes.ONNXRUNTIME, runtimes.LITERT])
def test_a_range_that_cannot_convert_falls_back_with_a_note(runtime):
    model = _with_numpy_function()
    graph, blocks = graph_model(model), analyse(model).blocks
    x = _example(model)
    fn = compile_range(blocks, runtime, x, graph)
    assert fn.runtime == runtimes.FALLBACK and fn.requested == runtime
    assert fn.note.startswith(f"{runtime} cannot run blocks {blocks[0].index}-{blocks[-1].index}: ")
    assert fn.note.endswith(f"; using {runtimes.FALLBACK}") and "\n" not in fn.note
    np.testing.assert_allclose(fn(x), _eager(blocks, x, graph), rtol=1e-5, atol=1e-6)


def _wrong_and_fast(blocks, graph, example, threads):
    """A 'runtime' that answers at once, 0.1% off: it would win every race if outputs were not checked."""
    answer = compiled.BUILDERS[runtimes.TF_FUNCTION](blocks, graph, example, threads)(example) * (1 + 10 * TOLERANCE)
    return lambda x: answer


def test_choose_runtime_never_picks_a_wrong_output(monkeypatch):
    monkeypatch.setitem(compiled.BUILDERS, runtimes.ONNXRUNTIME, _wrong_and_fast)
    model = _tiny()
    graph, blocks = graph_model(model), analyse(model).blocks
    choice = choose_runtime(blocks, _example(model), graph, passes=3,
                            candidates=(runtimes.TF_FUNCTION, runtimes.ONNXRUNTIME))
    wrong = choice.table[runtimes.ONNXRUNTIME]
    assert not wrong["matches"] and "output differs from eager" in wrong["note"] and len(wrong["samples_s"]) == 3
    assert wrong["whole_median_s"] < choice.table[runtimes.TF_FUNCTION]["whole_median_s"]  # it was the fastest
    assert choice.runtime == runtimes.TF_FUNCTION and choice.compiled.runtime == runtimes.TF_FUNCTION


def test_choose_runtime_picks_the_fastest_matching_and_keeps_it_warm():
    model = _tiny()
    graph, blocks = graph_model(model), analyse(model).blocks
    x = _example(model)
    choice = choose_runtime(blocks, x, graph, passes=3)
    assert set(choice.table) == set(runtimes.COMPILED)
    for row in choice.table.values():
        assert set(row) == {"whole_median_s", "compile_s", "max_abs_error", "matches", "note", "samples_s"}
        assert row["matches"] and len(row["samples_s"]) == 3
    medians = {name: row["whole_median_s"] for name, row in choice.table.items()}
    assert choice.runtime == min(medians, key=medians.get)
    assert choice.select_s > 0 and choice.reference_s > 0
    assert output_error(choice.compiled(x), _eager(blocks, x, graph))[1]


def test_choose_runtime_records_a_fallback_and_does_not_time_it():
    model = _with_numpy_function()
    graph, blocks = graph_model(model), analyse(model).blocks
    choice = choose_runtime(blocks, _example(model), graph, passes=2)
    assert choice.runtime == runtimes.TF_FUNCTION
    for name in (runtimes.ONNXRUNTIME, runtimes.LITERT):
        row = choice.table[name]
        assert not row["matches"] and row["note"].startswith(f"{name} cannot run blocks") and row["samples_s"] == []


def test_unknown_runtime_is_one_clear_error():
    model = _tiny()
    blocks, x = analyse(model).blocks, _example(model)
    with pytest.raises(UnknownRuntime, match="unknown runtime 'tensorrt'"):
        compile_range(blocks, "tensorrt", x)
    with pytest.raises(UnknownRuntime, match="unknown runtime 'auto'"):
        choose_runtime(blocks, x, candidates=("auto",))


def test_output_error_rejects_wrong_shapes_and_non_finite_values():
    reference = np.array([[1.0, -2.0]])
    assert output_error(reference * (1 + TOLERANCE / 2), reference)[1]
    assert not output_error(reference * (1 + 2 * TOLERANCE), reference)[1]
    assert output_error(np.array([[1.0]]), reference) == (float("inf"), False)
    assert not output_error(np.array([[np.nan, -2.0]]), reference)[1]


def test_mobilenetv2_head_blocks_convert_and_match():
    """Real application layers (depthwise conv, batch norm, ReLU6, residual add) on the first blocks."""
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3))
    graph, blocks = graph_model(model), analyse(model).blocks[:4]
    x = _example(model)
    reference = _eager(blocks, x, graph)
    for runtime in (runtimes.ONNXRUNTIME, runtimes.LITERT):
        fn = compile_range(blocks, runtime, x, graph)
        assert fn.runtime == runtime, fn.note
        assert output_error(fn(x), reference)[1]


@pytest.mark.parametrize("runtime", [runtimes.ONNXRUNTIME, runtimes.LITERT])
def test_a_range_too_big_to_convert_in_free_memory_falls_back(monkeypatch, runtime):
    """vgg16's LiteRT conversion peaked at 17 GB and got the benchmark OOM-killed: such ranges are not tried."""
    monkeypatch.setattr(compiled, "CONVERT_MEMORY_FACTOR", 1e12)
    model = _tiny()
    blocks, x = analyse(model).blocks, _example(model)
    fn = compile_range(blocks, runtime, x, graph_model(model))
    assert fn.runtime == runtimes.FALLBACK
    assert f"{runtime} cannot run blocks 0-{blocks[-1].index}: converting" in fn.note and "GB free" in fn.note
