"""`scission recalibrate` and the agent's `recalibrate` op on this machine (issue 13, points 4 and 7)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import REPO
from hypothesis import given, settings
from hypothesis import strategies as st

from scission.profiles import Block, LatencyStats, ModelProfile, Resource, read_profile, write_model
from scission.recalibration import CONV, DENSE, MEMORY, Recalibration, block_kind, rescale
from testbed.agent.call import call

ENV = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}


def _scission(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scission.cli", *argv], capture_output=True, text=True,
                          env=ENV, cwd=cwd, check=False)


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny conv + dense model file and its eager profile, benchmarked here."""
    import keras

    keras.utils.set_random_seed(3)
    folder = tmp_path_factory.mktemp("recal")
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(16, activation="relu")(x)
    outputs = keras.layers.Dense(5)(x)
    model_file = folder / "tiny.keras"
    keras.Model(inputs, outputs).save(model_file)
    done = _scission("benchmark", "--tier", "edge", "--name", "here", "--model-file", str(model_file),
                     "--repeats", "3", "--runtime", "tf-function", "--out", str(folder / "profiles"))
    assert done.returncode == 0, done.stderr
    return model_file, folder / "profiles" / "edge-here.scission"


def _bad(done: subprocess.CompletedProcess, *words: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.tf
def test_recalibrate_writes_a_new_profile_with_every_block_rescaled(tiny, tmp_path):
    _, source = tiny
    before = _digest(source)
    done = _scission("recalibrate", str(source), "--model", "tiny", "--passes", "2", "--one-factor",
                     "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "whole passes" in done.stdout
    assert _digest(source) == before  # the source is untouched
    old, new = read_profile(source).models["tiny"], read_profile(tmp_path / "edge-here.scission").models["tiny"]
    info = new.run["recalibrated_from"]
    assert Path(info["profile"]) == source.resolve()
    assert info["passes"] == 2 and len(info["pass_s"]) == 2 and info["cost_s"] > 0 and info["date"]
    factor = info["factor"]
    assert old.runtime == new.runtime == info["runtime"] == "tf-function"  # the passes ran in the profile's runtime
    assert factor == pytest.approx(new.run["whole_model_median_s"] / old.run["whole_model_median_s"])
    assert new.call_overhead_s == pytest.approx(old.call_overhead_s * factor)
    for a, b in zip(old.blocks, new.blocks, strict=True):
        assert b.latency.mean_s == pytest.approx(a.latency.mean_s * factor)
        assert b.latency.samples_s == pytest.approx([s * factor for s in a.latency.samples_s])
        assert (b.first_layer, b.last_layer, b.output_bytes) == (a.first_layer, a.last_layer, a.output_bytes)


@pytest.mark.tf
def test_per_kind_factors_apply_to_the_blocks_of_their_kind(tiny, tmp_path):
    _, source = tiny
    done = _scission("recalibrate", str(source), "--model", "tiny")  # per kind: the default under tf-function
    assert done.returncode == 0, done.stderr
    target = source.parent / "recalibrated" / "edge-here.scission"  # the default: beside the source
    old, new = read_profile(source).models["tiny"], read_profile(target).models["tiny"]
    info = new.run["recalibrated_from"]
    assert info["kinds"] == [CONV, MEMORY, MEMORY, MEMORY, DENSE, DENSE]
    assert info["block_timing"] == "clocks inside one call"  # tf-function: as the compiled benchmark times blocks
    for kind, a, b in zip(info["kinds"], old.blocks, new.blocks, strict=True):
        assert b.latency.mean_s == pytest.approx(a.latency.mean_s * info["factors"][kind])


@pytest.mark.tf
def test_default_passes_span_the_window(tiny, tmp_path):
    """A pass far shorter than a CFS period says little under a quota: by default passes run until they
    span 0.3 s (at most 10), and the factor is their median."""
    from scission.benchmark.recalibrate import AUTO_MAX_PASSES, MIN_WINDOW_S

    _, source = tiny
    done = _scission("recalibrate", str(source), "--model", "tiny", "--one-factor", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    info = read_profile(tmp_path / "edge-here.scission").models["tiny"].run["recalibrated_from"]
    assert info["passes"] == len(info["pass_s"]) >= 1
    assert sum(info["pass_s"]) >= MIN_WINDOW_S or info["passes"] == AUTO_MAX_PASSES


@pytest.mark.tf
def test_a_profile_is_never_recalibrated_in_place(tiny):
    _, source = tiny
    before = _digest(source)
    for out in (source.parent, source):
        _bad(_scission("recalibrate", str(source), "--model", "tiny", "--out", str(out)), "overwrite", str(source))
    assert _digest(source) == before


@pytest.mark.tf
def test_bad_input_is_one_line_and_exit_2(tiny, tmp_path):
    _, source = tiny
    _bad(_scission("recalibrate", str(source), "--model", "vgg16"), "no model 'vgg16'", "tiny")
    _bad(_scission("recalibrate", str(source), "--model", "tiny", "--runtime", "tensorrt"), "unknown runtime")
    _bad(_scission("recalibrate", str(tmp_path / "nowhere.scission"), "--model", "tiny"), "does not exist")
    # the profile's model file is not on this machine: it cannot build the model
    profile = read_profile(source)
    model = profile.models["tiny"]
    gone = replace(model, run={**model.run, "source": str(tmp_path / "gone" / "tiny.keras")})
    write_model(tmp_path / "elsewhere", profile.resource, gone, profile.metadata)
    _bad(_scission("recalibrate", str(tmp_path / "elsewhere" / "edge-here.scission"), "--model", "tiny"),
         "cannot build model 'tiny'")


def test_the_cli_stays_free_of_tensorflow():
    code = "import sys; from scission.cli import build_parser; build_parser(); print('tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, check=True)
    assert done.stdout.strip() == "False"


def test_block_kinds_follow_the_layer_types():
    assert block_kind(["Conv2D", "BatchNormalization", "ReLU"]) == CONV
    assert block_kind(["DepthwiseConv2D"]) == CONV
    assert block_kind(["GlobalAveragePooling2D", "Dense"]) == DENSE
    assert block_kind(["BatchNormalization", "Add", "ReLU"]) == MEMORY


def test_an_eager_profile_is_rescaled_like_for_like():
    """Eager passes now run Keras's per-node steps, which the eager benchmark timed as its chained pass."""
    blocks = (Block(0, 0, 0, 8, LatencyStats.from_samples([0.1])),)
    model = ModelProfile("m", blocks, run={"whole_model_median_s": 0.2, "chained_pass_median_s": 0.1})
    measured = Recalibration("eager", (0.3,), 0.3, 0.0, 0.0, 0.3)
    assert rescale(model, Path("/p"), measured, per_kind=False, passes=1).run["recalibrated_from"]["factor"] == \
        pytest.approx(3.0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(1e-4, 1.0), min_size=1, max_size=8), st.floats(0.1, 10.0))
def test_one_factor_scales_every_block_and_keeps_the_rest(latencies, now_over_then):
    blocks = tuple(Block(i, i, i, 100 + i, LatencyStats.from_samples([t, t * 1.1])) for i, t in enumerate(latencies))
    whole = sum(latencies)
    model = ModelProfile("m", blocks, 10, (1, 4), run={"whole_model_median_s": whole, "runtime": "tf-function"})
    measured = Recalibration("tf-function", (whole * now_over_then,), 0.1, 0.0, 0.0, 0.1)
    new = rescale(model, Path("/p/edge-x.scission"), measured, per_kind=False, passes=1)
    assert new.run["recalibrated_from"]["factor"] == pytest.approx(now_over_then)
    for a, b in zip(model.blocks, new.blocks, strict=True):
        assert b.latency.mean_s == pytest.approx(a.latency.mean_s * now_over_then)
        assert b.output_bytes == a.output_bytes
    assert Resource("edge", "x")  # the profile format still takes the name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.tf
def test_agent_recalibrate_answers_and_a_model_it_cannot_build_is_an_error_reply(tiny):
    model_file, _ = tiny
    port = _free_port()
    agent = subprocess.Popen([sys.executable, "-m", "testbed.agent", "--node", "edge", "--listen", "127.0.0.1",
                              "--port", str(port)], cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while True:
            try:
                call("ping", {}, port, timeout_s=2)
                break
            except OSError:
                assert time.time() < deadline, "agent did not start"
                time.sleep(0.2)
        reply = call("recalibrate", {"model": "tiny", "model_file": str(model_file), "passes": 3,
                                     "runtime": "tf-function"}, port).header
        assert reply["ok"], reply
        assert len(reply["pass_s"]) == 3 and reply["median_s"] > 0 and reply["wall_s"] >= sum(reply["pass_s"])
        assert reply["runtime"] == "tf-function"
        for fields, words in (({"model": "no_such_model", "passes": 1}, "cannot build"),
                              ({"model": "tiny", "model_file": str(model_file), "runtime": "warp"},
                               "unknown runtime")):
            bad = call("recalibrate", fields, port).header
            assert not bad["ok"] and words in bad["error"], bad
        assert call("ping", {}, port).header["ok"]  # still serving
        print(json.dumps(reply))
    finally:
        agent.terminate()
        agent.wait(timeout=10)
