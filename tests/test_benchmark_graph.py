"""Split analysis on hand-built functional models whose valid cuts are known, and on a real application."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from benchmark_models import graphs

from scission.benchmark.graph import analyse
from scission.benchmark.timing import BlockRunner
from scission.errors import BenchmarkError
from scission.legacy import read_legacy_dat

pytestmark = pytest.mark.tf


@pytest.mark.parametrize("builder", list(graphs.ALL.values()), ids=list(graphs.ALL))
def test_blocks_are_cut_where_one_tensor_crosses(builder):
    model, expected = builder()
    analysis = analyse(model)
    assert [b.layer_names for b in analysis.blocks] == expected
    # Blocks are contiguous, cover every layer and know their layer range.
    assert analysis.blocks[0].first_layer == 0
    assert analysis.blocks[-1].last_layer == len(model.layers) - 1
    for before, after in zip(analysis.blocks, analysis.blocks[1:], strict=False):
        assert after.first_layer == before.last_layer + 1
    assert sum(b.param_count for b in analysis.blocks) == model.count_params()


@pytest.mark.parametrize("builder", list(graphs.ALL.values()), ids=list(graphs.ALL))
def test_chaining_the_blocks_reproduces_the_model(builder):
    model, _ = builder()
    analysis = analyse(model)
    x = np.random.default_rng(1).normal(size=(1, graphs.WIDTH)).astype("float32")
    value = x
    for block in analysis.blocks:
        value = BlockRunner(block)(value)
        assert tuple(value.shape)[1:] == block.output_shape[1:]
        assert block.output_dtype == "float32"
    np.testing.assert_array_equal(np.asarray(value), np.asarray(model(x, training=False)))


def test_sequential_model_uses_its_graph_with_the_input_layer_first():
    model = keras.Sequential([keras.Input((3,), name="in"), keras.layers.Dense(2, name="a"),
                              keras.layers.Dense(2, name="b")])
    assert [b.layer_names for b in analyse(model).blocks] == [("in", "a"), ("b",)]


def test_nested_model_is_one_layer():
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, keras.layers.Dense(4, name="i2")(keras.layers.Dense(4, name="i1")(inner_in)),
                        name="inner")
    x = keras.Input((4,), name="in")
    y = keras.layers.Dense(4, name="c")(inner(keras.layers.Dense(4, name="a")(x)))
    assert [b.layer_names for b in analyse(keras.Model(x, y)).blocks] == [("in", "a"), ("inner",), ("c",)]


def test_two_input_model_is_refused_with_a_clear_error():
    a, b = keras.Input((2,)), keras.Input((2,))
    model = keras.Model([a, b], keras.layers.Add()([a, b]), name="pair")
    with pytest.raises(BenchmarkError, match="2 inputs"):
        analyse(model)


def test_vgg16_cuts_match_the_original_tools_profile(legacy_dir):
    """A chain model: one block per layer (input layer merged into block 0), as in the published profile."""
    model = keras.applications.VGG16(weights=None)
    ours = [(b.first_layer, b.last_layer) for b in analyse(model).blocks]
    legacy = read_legacy_dat(legacy_dir / "device-raspi4.dat").models["vgg16"]
    assert ours == [(b.first_layer, b.last_layer) for b in legacy.blocks]


def test_image_is_preprocessed_the_applications_way(tmp_path):
    """mobilenet_v2 scales pixels to [-1, 1]; vgg16 subtracts the ImageNet mean and swaps to BGR."""
    from PIL import Image

    from scission.benchmark.inputs import image_input

    path = tmp_path / "grey.png"
    Image.new("RGB", (300, 200), color=(255, 255, 255)).save(path)
    x = image_input(str(path), (None, 224, 224, 3), keras.applications.mobilenet_v2.preprocess_input, "mobilenetv2")
    assert x.shape == (1, 224, 224, 3)
    np.testing.assert_allclose(x, 1.0)
    x = image_input(str(path), (None, 224, 224, 3), keras.applications.vgg16.preprocess_input, "vgg16")
    np.testing.assert_allclose(x[0, 0, 0], [255 - 103.939, 255 - 116.779, 255 - 123.68], rtol=1e-5)
