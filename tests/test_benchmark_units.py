"""Benchmark pieces that need no model: output sizes, inputs, host limits, and staying TensorFlow-free."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

from scission.benchmark import host, inputs
from scission.benchmark.models import APPLICATIONS, check_application
from scission.benchmark.timing import npy_size_bytes
from scission.errors import BenchmarkError, UnknownModel


@pytest.mark.parametrize(("shape", "dtype"), [((1, 112, 112, 32), "float32"), ((1, 1000), "float32"),
                                              ((1, 7, 7, 2048), "float16"), ((1, 3), "int64")])
def test_npy_size_is_what_numpy_save_writes(shape, dtype):
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(shape, dtype=dtype))
    assert npy_size_bytes(shape, dtype) == len(buffer.getvalue())


def test_the_18_applications_of_the_original_are_known():
    assert len(APPLICATIONS) == 18
    assert APPLICATIONS["nasnetlarge"].image_size == 331
    assert APPLICATIONS["inception_v3"].image_size == 299
    with pytest.raises(UnknownModel, match="known models: densenet121, densenet169"):
        check_application("alexnet")


def test_synthetic_input_is_deterministic():
    a = inputs.synthetic_input((None, 8, 8, 3), "float32", None)
    b = inputs.synthetic_input((None, 8, 8, 3), "float32", None)
    assert a.shape == (1, 8, 8, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert 0.0 <= a.min() and a.max() < 1.0


def test_image_is_resized_to_the_model_input(tmp_path):
    path = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), color=(255, 0, 0)).save(path)
    x = inputs.image_input(str(path), (None, 16, 12, 3), None, "m")
    assert x.shape == (1, 16, 12, 3)
    np.testing.assert_allclose(x[0, :, :, 0], 1.0)
    np.testing.assert_allclose(x[0, :, :, 1:], 0.0)
    grey = inputs.image_input(str(path), (None, 8, 8, 1), None, "m")
    assert grey.shape == (1, 8, 8, 1)
    assert inputs.image_input(str(path), (None, None, None, 3), None, "m").shape == (1, 30, 40, 3)


def test_unreadable_image_is_one_clear_error(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(BenchmarkError, match="cannot read input image .*broken.jpg"):
        inputs.check_image(str(bad))
    with pytest.raises(BenchmarkError, match="does not exist"):
        inputs.check_image(str(tmp_path / "missing.png"))


def test_an_image_for_a_non_image_model_is_refused(tmp_path):
    path = tmp_path / "p.png"
    Image.new("RGB", (4, 4)).save(path)
    with pytest.raises(BenchmarkError, match="not an image"):
        inputs.image_input(str(path), (None, 10), None, "dense")


def test_cgroup_v2_limits_are_read(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    (tmp_path / "memory.max").write_text("2147483648\n")
    assert host.cpu_limit_cores(tmp_path) == 1.5
    assert host.memory_limit_bytes(tmp_path) == 2147483648
    (tmp_path / "cpu.max").write_text("max 100000\n")
    (tmp_path / "memory.max").write_text("max\n")
    assert host.cpu_limit_cores(tmp_path) is None
    assert host.memory_limit_bytes(tmp_path) is None


def test_cgroup_v1_limits_are_read(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("200000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert host.cpu_limit_cores(tmp_path) == 2.0
    assert host.memory_limit_bytes(tmp_path) is None  # v1's "unlimited"


def test_host_metadata_names_the_machine_and_frameworks():
    meta = host.host_metadata()
    assert meta["host"] and meta["date"].endswith("+00:00")
    assert meta["tensorflow"] and meta["keras"].startswith("3.")


@pytest.mark.parametrize("module", ["scission.benchmark", "scission.benchmark.cli", "scission.benchmark.session",
                                    "scission.benchmark.worker", "scission.benchmark.graph",
                                    "scission.benchmark.timing", "scission.benchmark.models",
                                    "scission.benchmark.inputs", "scission.benchmark.host"])
def test_benchmark_modules_import_tensorflow_only_when_a_model_runs(module):
    code = f"import sys, {module}; print([m for m in ('tensorflow', 'keras') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
