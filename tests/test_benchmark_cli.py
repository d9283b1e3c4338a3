"""`scission benchmark` end to end: real models in child processes, real files, exit status 2 on bad input."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, console_script
from PIL import Image

from scission.profile_folder import load_profiles
from scission.profiles import read_profile

BLOCK_KEYS = {"first_layer", "last_layer", "median_s", "output_bytes"}
SUMMARY_KEYS = {"model", "tier", "name", "repeats", "blocks", "whole_model_median_s", "chained_max_abs_error",
                "block_sum_ratio", "wall_s", "build_s", "peak_rss_bytes"}


def scission(*argv: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([console_script("scission"), *argv], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout)


def assert_one_line_error(out: subprocess.CompletedProcess, *fragments: str) -> None:
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("scission: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


# ------------------------------------------------------------------ bad input (checked before any model is built)


def test_unknown_model_lists_the_known_ones(tmp_path):
    out = scission("benchmark", "--tier", "device", "--name", "t", "--model", "mobilenetv2", "alexnet",
                   "--out", str(tmp_path))
    assert_one_line_error(out, "unknown model 'alexnet'", "known models: densenet121", "vgg19", "xception")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("repeats", ["0", "-3"])
def test_repeats_below_one_is_refused(tmp_path, repeats):
    out = scission("benchmark", "--tier", "device", "--name", "t", "--model", "vgg16", "--repeats", repeats,
                   "--out", str(tmp_path))
    assert_one_line_error(out, f"--repeats {repeats} must be at least 1")


def test_unreadable_image_is_refused(tmp_path):
    image = tmp_path / "photo.jpg"
    image.write_bytes(b"\xff\xd8\xff garbage, not a jpeg")
    out = scission("benchmark", "--tier", "device", "--name", "t", "--model", "vgg16", "--input", str(image),
                   "--out", str(tmp_path / "out"))
    assert_one_line_error(out, "cannot read input image", "photo.jpg")


@pytest.mark.parametrize(("content", "fragment"), [(None, "does not exist"), (b"PK not really a zip", "not a .keras")])
def test_missing_or_corrupt_model_file_is_refused(tmp_path, content, fragment):
    path = tmp_path / "model.keras"
    if content is not None:
        path.write_bytes(content)
    out = scission("benchmark", "--tier", "edge", "--name", "e", "--model-file", str(path), "--out", str(tmp_path))
    assert_one_line_error(out, fragment, "model.keras")


def test_weights_need_a_file_and_a_single_model(tmp_path):
    out = scission("benchmark", "--tier", "device", "--name", "t", "--model", "vgg16", "--weights",
                   str(tmp_path / "none.weights.h5"), "--out", str(tmp_path))
    assert_one_line_error(out, "weights file", "does not exist")
    out = scission("benchmark", "--tier", "device", "--name", "t", "--all", "--weights", "w.h5", "--out", str(tmp_path))
    assert_one_line_error(out, "--weights fits one model, but 18 models")


def test_bad_tier_name_is_refused(tmp_path):
    out = scission("benchmark", "--tier", "de-vice", "--name", "t", "--model", "vgg16", "--out", str(tmp_path))
    assert_one_line_error(out, "tier 'de-vice'")


# ------------------------------------------------------------------ user models (.keras, SavedModel, weights)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> Path:
    """A small conv net saved as .keras, as a SavedModel and as weights; weights of another architecture too."""
    import keras

    folder = tmp_path_factory.mktemp("tiny")
    x = keras.Input((8, 8, 3), name="img")
    y = keras.layers.Conv2D(4, 3, name="conv")(x)
    y = keras.layers.GlobalAveragePooling2D(name="pool")(y)
    y = keras.layers.Dense(2, name="head")(y)
    model = keras.Model(x, y, name="tiny")
    model.save(folder / "tiny.keras")
    model.save_weights(folder / "tiny.weights.h5")
    model.export(str(folder / "tiny_sm"), verbose=False)
    other = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    other.save_weights(folder / "other.weights.h5")
    Image.new("RGB", (20, 12), color=(10, 200, 30)).save(folder / "photo.png")
    return folder


@pytest.mark.tf
def test_keras_file_with_weights_and_an_image(tiny_models, tmp_path):
    out = scission("benchmark", "--tier", "edge", "--name", "e1", "--model-file", str(tiny_models / "tiny.keras"),
                   "--weights", str(tiny_models / "tiny.weights.h5"), "--input", str(tiny_models / "photo.png"),
                   "--repeats", "3", "--out", str(tmp_path), "--json")
    assert out.returncode == 0, out.stderr
    (summary,) = json.loads(out.stdout)
    assert SUMMARY_KEYS <= set(summary)
    assert summary["model"] == "tiny" and summary["repeats"] == 3
    assert [(b["first_layer"], b["last_layer"]) for b in summary["blocks"]] == [(0, 1), (2, 2), (3, 3)]
    assert [b["output_bytes"] for b in summary["blocks"]] == [6 * 6 * 4 * 4, 4 * 4, 2 * 4]
    assert summary["chained_max_abs_error"] == 0.0
    model = read_profile(tmp_path / "edge-e1.scission").models["tiny"]
    assert model.input_bytes == 8 * 8 * 3 * 4 and model.input_shape == (1, 8, 8, 3)
    assert model.run["input"].endswith("photo.png")
    assert "tiny.keras" in model.run["source"]


@pytest.mark.tf
def test_saved_model_directory_is_one_block(tiny_models, tmp_path):
    out = scission("benchmark", "--tier", "edge", "--name", "e1", "--model-file", str(tiny_models / "tiny_sm"),
                   "--repeats", "2", "--out", str(tmp_path), "--json")
    assert out.returncode == 0, out.stderr
    (summary,) = json.loads(out.stdout)
    assert summary["model"] == "tiny_sm"
    assert [(b["first_layer"], b["last_layer"], b["output_bytes"]) for b in summary["blocks"]] == [(0, 1, 8)]
    assert summary["chained_max_abs_error"] == 0.0


@pytest.mark.tf
def test_weights_that_do_not_fit_are_one_line(tiny_models, tmp_path):
    out = scission("benchmark", "--tier", "edge", "--name", "e1", "--model-file", str(tiny_models / "tiny.keras"),
                   "--weights", str(tiny_models / "other.weights.h5"), "--out", str(tmp_path))
    assert_one_line_error(out, "other.weights.h5 do not fit model tiny")


@pytest.mark.tf
def test_one_process_per_model_and_a_failure_keeps_earlier_profiles(tiny_models, tmp_path):
    from scission.benchmark.session import run_jobs
    from scission.benchmark.worker import Job
    from scission.errors import BenchmarkError

    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"no model here")
    jobs = [Job(model=name, tier="edge", resource_name="e1", repeats=1, out_dir=str(tmp_path / "out"), metadata={},
                model_file=str(path))
            for name, path in [("tiny", tiny_models / "tiny.keras"), ("tiny2", tiny_models / "tiny.keras"),
                               ("broken", broken)]]
    summaries = []
    with pytest.raises(BenchmarkError, match="broken.keras is not a .keras archive"):
        for summary in run_jobs(jobs):
            summaries.append(summary)
    assert len({s["pid"] for s in summaries} | {os.getpid()}) == 3
    assert set(read_profile(tmp_path / "out" / "edge-e1.scission").models) == {"tiny", "tiny2"}


# ------------------------------------------------------------------ a real application, then predict reads it


@pytest.mark.tf
def test_mobilenetv2_profile_feeds_predict(tmp_path, legacy_dir):
    out_dir, plots, photo = tmp_path / "profiles", tmp_path / "plots", tmp_path / "photo.jpg"
    Image.new("RGB", (640, 480), color=(200, 120, 40)).save(photo)
    out = scission("benchmark", "--tier", "device", "--name", "t", "--model", "mobilenetv2", "--repeats", "2",
                   "--out", str(out_dir), "--json", "--plot", str(plots), "--input", str(photo),
                   "--runtime", "tf-function")  # auto's conversions are tested in test_benchmark_compiled.py
    assert out.returncode == 0, out.stderr
    (summary,) = json.loads(out.stdout)
    assert SUMMARY_KEYS <= set(summary) and all(BLOCK_KEYS <= set(b) for b in summary["blocks"])
    assert (plots / "device-t-mobilenetv2.png").stat().st_size > 10_000

    (profile,) = load_profiles(out_dir)
    assert profile.metadata["tensorflow"] and profile.metadata["keras"].startswith("3.")
    assert {"host", "cpu_model", "cpu_limit_cores", "memory_limit_bytes", "date"} <= set(profile.metadata)
    model = profile.models["mobilenetv2"]
    assert model.input_bytes == 224 * 224 * 3 * 4 and model.input_shape == (1, 224, 224, 3)
    assert model.run["input"] == str(photo)
    assert model.blocks[0].first_layer == 0 and model.blocks[-1].last_layer == model.run["layer_count"] - 1
    assert len(model.blocks) > 50  # a chain of inverted-residual stages: cuts between stages only
    for block in model.blocks:
        assert block.latency.count == 2 and len(block.latency.samples_s) == 2
        assert block.output_bytes == math.prod(block.output_shape) * 4 and block.output_dtype == "float32"
        assert block.output_npy_bytes == block.output_bytes + 128
    run = model.run
    # Compiled (the default): one whole call per 4 chained passes; blocks are net of the per-call overhead.
    assert run["runtime"] != "eager" and len(run["whole_model_samples_s"]) == 1
    assert run["cold_s"] > 0 and run["build_s"] > 0
    assert run["chained_max_abs_error"] <= run["chained_tolerance"]
    assert run["block_sum_ratio"] == pytest.approx(
        (sum(b.latency.median_s for b in model.blocks) + run["call_overhead_s"]) / run["whole_model_median_s"])
    assert run["wall_s"] > run["build_s"] and run["peak_rss_bytes"] > 100e6

    # A cloud profile of the same model (same blocks, 10x faster) and a legacy file in the same folder.
    from dataclasses import replace

    from scission.profiles import LatencyStats, Resource, write_model

    faster = replace(model, blocks=tuple(
        replace(b, latency=LatencyStats.from_samples([s / 10 for s in b.latency.samples_s])) for b in model.blocks))
    write_model(out_dir, Resource("cloud", "c"), faster, {})
    (out_dir / "edge-2500.dat").write_bytes((legacy_dir / "edge-2500.dat").read_bytes())
    (out_dir / "net.csv").write_text("source,destination,ping(ms),bandwidth(mbps)\nt,c,20,50\nt,2500,10,100\n"
                                     "2500,c,10,100\n")
    assert {p.resource.label for p in load_profiles(out_dir)} == {"device-t", "cloud-c", "edge-2500"}
    out = scission("predict", str(out_dir), "net.csv", "mobilenetv2", "--tiers", "device,cloud", "--json")
    assert out.returncode == 0, out.stderr
    configs = json.loads(out.stdout)
    assert configs and configs[0]["latency_s"] > 0


@pytest.mark.tf
def test_application_weights_that_do_not_fit_are_one_line(tiny_models, tmp_path):
    out = scission("benchmark", "--tier", "device", "--name", "t", "--model", "mobilenetv2", "--weights",
                   str(tiny_models / "tiny.weights.h5"), "--out", str(tmp_path))
    assert_one_line_error(out, "tiny.weights.h5 do not fit model mobilenetv2")
    assert not (tmp_path / "device-t.scission").exists()


@pytest.mark.tf
def test_application_loads_local_weights(tmp_path):
    """Weights saved from a model of the same architecture load; the profile says where they came from."""
    import keras

    weights = tmp_path / "mnv2.weights.h5"
    keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3)).save_weights(weights)
    out = scission("benchmark", "--tier", "device", "--name", "t", "--model", "mobilenetv2", "--weights",
                   str(weights), "--repeats", "1", "--out", str(tmp_path / "out"), "--runtime", "tf-function")
    assert out.returncode == 0, out.stderr
    assert "mobilenetv2:" in out.stdout and "Σ blocks / whole" in out.stdout
    run = read_profile(tmp_path / "out" / "device-t.scission").models["mobilenetv2"].run
    assert run["source"].endswith(f"weights {weights})")


# ------------------------------------------------------------------ repeated options, custom layers, noisy hosts


def _parsed_jobs(*argv: str):
    import argparse

    from scission.benchmark import cli

    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers())
    return cli._jobs(parser.parse_args(["benchmark", "--tier", "device", "--name", "t", *argv]))


def test_repeated_model_flags_are_all_benchmarked():
    """`--model a --model b` used to keep only b (argparse's last-wins for nargs)."""
    jobs = _parsed_jobs("--model", "mobilenetv2", "--model", "resnet50", "vgg16", "--model", "mobilenetv2")
    assert [j.model for j in jobs] == ["mobilenetv2", "resnet50", "vgg16"]


def test_two_model_files_with_one_name_are_refused(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "m.keras").write_bytes(b"")
    out = scission("benchmark", "--tier", "edge", "--name", "e", "--model-file", str(tmp_path / "a" / "m.keras"),
                   "--model-file", str(tmp_path / "b" / "m.keras"), "--out", str(tmp_path / "out"))
    assert_one_line_error(out, "a/m.keras and", "b/m.keras are both named 'm'", "rename one")


def test_weights_with_several_model_files_are_refused(tmp_path):
    (tmp_path / "a.keras").write_bytes(b"")
    (tmp_path / "b.keras").write_bytes(b"")
    out = scission("benchmark", "--tier", "edge", "--name", "e", "--model-file", str(tmp_path / "a.keras"),
                   "--model-file", str(tmp_path / "b.keras"), "--weights", "w.h5", "--out", str(tmp_path))
    assert_one_line_error(out, "--weights fits one model, but 2 model files")


@pytest.mark.parametrize(("argv", "fragment"), [
    (["--model", "vgg16", "--unsafe"], "--unsafe applies to --model-file only"),
    (["--model", "vgg16", "--custom-objects", "x.py"], "--custom-objects applies to --model-file only"),
    (["--model-file", "README.md", "--custom-objects", "no_such_layers.py"], "--custom-objects no_such_layers.py: no such"),
    (["--model-file", "README.md", "--custom-objects", "no_such_module_xyz"], "no_such_module_xyz: no module"),
])
def test_custom_object_flags_are_checked_before_anything_runs(tmp_path, argv, fragment):
    out = scission("benchmark", "--tier", "edge", "--name", "e", *argv, "--out", str(tmp_path))
    assert_one_line_error(out, fragment)


def test_block_sum_warning_names_the_model_and_the_value():
    from scission.benchmark.cli import block_sum_warning

    base = {"model": "resnet50", "load_average_1m": [0.5, 3.25]}
    assert block_sum_warning({**base, "block_sum_ratio": 1.0}) is None
    assert block_sum_warning({**base, "block_sum_ratio": 0.9}) is None
    assert block_sum_warning({**base, "block_sum_ratio": None}) is None
    for ratio in (0.85, 1.234):
        warning = block_sum_warning({**base, "block_sum_ratio": ratio})
        assert warning.startswith("warning: resnet50: Σ blocks / whole = ")
        assert f"{ratio:.3f}" in warning and "0.9–1.1" in warning and "load average 3.25" in warning


@pytest.fixture(scope="module")
def custom_models(tmp_path_factory) -> Path:
    """A model with a registered and an unregistered custom layer, and one with a Lambda layer."""
    from benchmark_models import custom_layers

    folder = tmp_path_factory.mktemp("custom")
    custom_layers.custom_model().save(folder / "custom.keras")
    custom_layers.lambda_model().save(folder / "lambda.keras")
    (folder / "layers.py").write_text(Path(custom_layers.__file__).read_text())
    return folder


@pytest.mark.tf
def test_lambda_model_needs_unsafe_and_loads_with_it(custom_models, tmp_path):
    out = scission("benchmark", "--tier", "edge", "--name", "e", "--model-file", str(custom_models / "lambda.keras"),
                   "--out", str(tmp_path))
    assert_one_line_error(out, "lambda.keras has a Lambda layer", "pass --unsafe")
    out = scission("benchmark", "--tier", "edge", "--name", "e", "--model-file", str(custom_models / "lambda.keras"),
                   "--unsafe", "--repeats", "2", "--out", str(tmp_path), "--json")
    assert out.returncode == 0, out.stderr
    (summary,) = json.loads(out.stdout)
    assert summary["model"] == "lambda" and summary["chained_max_abs_error"] == 0.0
    assert read_profile(tmp_path / "edge-e.scission").models["lambda"].run["unsafe_load"] is True


@pytest.mark.tf
def test_custom_layers_load_from_a_file_or_a_module(custom_models, tmp_path):
    model_file = str(custom_models / "custom.keras")
    out = scission("benchmark", "--tier", "edge", "--name", "e", "--model-file", model_file, "--out", str(tmp_path))
    assert_one_line_error(out, "cannot load model file", "custom.keras", "--custom-objects MODULE")
    for spec in (str(custom_models / "layers.py"), "tests.benchmark_models.custom_layers"):
        out = scission("benchmark", "--tier", "edge", "--name", spec.rsplit(".", 1)[-1], "--model-file", model_file,
                       "--custom-objects", spec, "--repeats", "2", "--out", str(tmp_path), "--json")
        assert out.returncode == 0, out.stderr
        (summary,) = json.loads(out.stdout)
        assert [(b["first_layer"], b["last_layer"]) for b in summary["blocks"]] == [(0, 1), (2, 2), (3, 3), (4, 4)]
        # auto may pick onnxruntime or litert: blocks converted one by one round differently from the whole
        assert summary["chained_within_tolerance"], summary["chained_max_abs_error"]


@pytest.mark.tf
def test_several_model_files_are_all_benchmarked_with_the_ratio_and_its_warning(tiny_models, custom_models, tmp_path):
    out = scission("benchmark", "--tier", "edge", "--name", "e", "--model-file", str(tiny_models / "tiny.keras"),
                   "--model-file", str(custom_models / "lambda.keras"), "--unsafe", "--repeats", "3",
                   "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["tiny", "lambda"]
    assert set(read_profile(tmp_path / "edge-e.scission").models) == {"tiny", "lambda"}
    for name in ("tiny", "lambda"):
        ratio = read_profile(tmp_path / "edge-e.scission").models[name].run["block_sum_ratio"]
        (line,) = [line for line in lines if line.startswith(f"{name}:")]
        assert f"Σ blocks / whole {ratio:.3f}" in line
        warned = f"warning: {name}: Σ blocks / whole = {ratio:.3f}, outside 0.9–1.1" in out.stderr
        assert warned == (not 0.9 <= ratio <= 1.1), out.stderr
