"""`scission benchmark --runtime`: blocks timed in a compiled runtime, format-2 fields, fallback notes.

No timing thresholds here (the host is shared): the targets live in benchmarks/compiled_blocks.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from test_benchmark_cli import assert_one_line_error, scission

from scission.profiles import read_profile

NUMPY_LAYER = '''
import keras
import tensorflow as tf


class NumpyDouble(keras.layers.Layer):
    """Runs Python code inside the graph: a TensorFlow graph runs it, converters to other runtimes cannot."""

    def call(self, x):
        return tf.ensure_shape(tf.numpy_function(lambda a: a * 2, [x], x.dtype), x.shape)

    def compute_output_shape(self, shape):
        return shape


custom_objects = {"NumpyDouble": NumpyDouble}
'''


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    import importlib.util

    import keras

    folder = tmp_path_factory.mktemp("compiled")
    x = keras.Input((8, 8, 3), name="img")
    y = keras.layers.Conv2D(4, 3, name="conv")(x)
    y = keras.layers.GlobalAveragePooling2D(name="pool")(y)
    y = keras.layers.Dense(2, name="head")(y)
    keras.Model(x, y, name="tiny").save(folder / "tiny.keras")

    (folder / "numpy_layer.py").write_text(NUMPY_LAYER)
    spec = importlib.util.spec_from_file_location("numpy_layer_for_test", folder / "numpy_layer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    x = keras.Input((6,), name="in")
    y = keras.layers.Dense(4, name="a")(x)
    y = module.NumpyDouble(name="pyfunc")(y)
    y = keras.layers.Dense(2, name="head")(y)
    keras.Model(x, y, name="pyfunc").save(folder / "pyfunc.keras")
    return folder


def test_unknown_runtime_is_one_line_before_anything_runs(tmp_path):
    out = scission("benchmark", "--tier", "device", "--name", "t", "--model", "vgg16", "--runtime", "tensorrt",
                   "--out", str(tmp_path))
    assert_one_line_error(out, "unknown runtime 'tensorrt'", "tf-function", "onnxruntime", "litert", "eager", "auto")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.tf
def test_tf_function_profile_has_format_2_fields_and_net_block_latencies(models_dir, tmp_path):
    out = scission("benchmark", "--tier", "edge", "--name", "e", "--model-file", str(models_dir / "tiny.keras"),
                   "--runtime", "tf-function", "--repeats", "3", "--out", str(tmp_path), "--json")
    assert out.returncode == 0, out.stderr
    (summary,) = json.loads(out.stdout)
    for key in ("runtime", "compile_s", "overhead_ratio", "call_overhead_s", "blocks_compile_s", "select_s"):
        assert key in summary, key
    assert summary["runtime"] == "tf-function"

    folder = tmp_path / "edge-e.scission"
    assert json.loads((folder / "profile.json").read_text())["version"] == 2
    model = read_profile(folder).models["tiny"]
    run = model.run
    assert model.runtime == "tf-function" and run["runtimes"]["tf-function"]["compile_s"] > 0
    assert model.call_overhead_s == run["call_overhead_s"] > 0
    assert len(run["blocks_compile_s"]) == len(model.blocks) == 3 and all(s > 0 for s in run["blocks_compile_s"])
    assert run["compile_s"] > 0 and run["select_s"] >= 0 and run["threads"] >= 1
    assert run["overhead_ratio"] > 0 and {"build", "compile", "select", "repeats"} <= set(run["phases_s"])
    assert len(run["whole_model_samples_s"]) == math.ceil(3 / 4)  # whole calls interleaved, one per 4 passes
    assert run["chained_within_tolerance"]
    # Block latencies are net of the per-call overhead: in every timed pass, the blocks' share plus that
    # pass's overhead is the pass's own call, so it cannot exceed the pass's wall time.
    assert all(b.latency.count == 3 for b in model.blocks)
    for r, (overhead, wall) in enumerate(zip(run["call_overhead_samples_s"], run["chained_pass_samples_s"],
                                             strict=True)):
        assert overhead > 0
        assert sum(b.latency.samples_s[r] for b in model.blocks) + overhead <= wall + 1e-9
    assert run["block_sum_ratio"] == pytest.approx(
        (sum(b.latency.median_s for b in model.blocks) + run["call_overhead_s"]) / run["whole_model_median_s"])


@pytest.mark.tf
def test_eager_keeps_the_layer_by_layer_path(models_dir, tmp_path):
    out = scission("benchmark", "--tier", "edge", "--name", "e", "--model-file", str(models_dir / "tiny.keras"),
                   "--runtime", "eager", "--repeats", "2", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "blocks in eager" in out.stdout
    run = read_profile(tmp_path / "edge-e.scission").models["tiny"].run
    assert run["runtime"] == "eager" and run["call_overhead_s"] == 0 and len(run["whole_model_samples_s"]) == 2
    assert run["block_sum_ratio"] == pytest.approx(run["block_sum_s"] / run["whole_model_median_s"])


@pytest.mark.tf
def test_a_runtime_that_cannot_convert_falls_back_with_a_note(models_dir, tmp_path):
    out = scission("benchmark", "--tier", "edge", "--name", "e", "--model-file", str(models_dir / "pyfunc.keras"),
                   "--custom-objects", str(models_dir / "numpy_layer.py"), "--runtime", "onnxruntime",
                   "--repeats", "2", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    notes = [line for line in out.stderr.splitlines() if line.startswith("note: pyfunc: onnxruntime cannot run")]
    assert notes and all(line.endswith("using tf-function") for line in notes), out.stderr
    assert "Traceback" not in out.stderr
    run = read_profile(tmp_path / "edge-e.scission").models["pyfunc"].run
    assert run["runtime"] == "tf-function" and run["notes"]


@pytest.mark.tf
def test_auto_records_the_side_by_side_choice(models_dir, tmp_path):
    out = scission("benchmark", "--tier", "edge", "--name", "e", "--model-file", str(models_dir / "tiny.keras"),
                   "--repeats", "2", "--out", str(tmp_path), "--json")
    assert out.returncode == 0, out.stderr
    (summary,) = json.loads(out.stdout)
    run = read_profile(tmp_path / "edge-e.scission").models["tiny"].run
    assert set(run["runtimes"]) == {"tf-function", "onnxruntime", "litert"}
    assert summary["runtime"] == run["runtime"] in run["runtimes"] and run["runtimes"][run["runtime"]]["matches"]
    assert len(run["blocks_compile_s"]) == 3 and run["select_s"] > 0 and run["call_overhead_s"] > 0
