"""benchmarks/priced_profiles.py --compiled: legacy machines priced with a measured compile time (issue 13)."""

from __future__ import annotations

import importlib.util

import pytest
from conftest import REPO

from scission.profile_folder import load_profiles
from scission.profiles import Block, LatencyStats, ModelProfile, Resource, write_model
from testbed.policies.costs import compile_price


def _script():
    spec = importlib.util.spec_from_file_location("priced_profiles", REPO / "benchmarks" / "priced_profiles.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_switch_compiles_are_priced_per_layer_from_the_measured_profile(tmp_path):
    # a measured compiled profile: 3 blocks over 10 layers, 2 s of per-block compile in all -> 0.2 s per layer
    spans = [(0, 3), (4, 8), (9, 9)]
    blocks = tuple(Block(i, a, b, 100, LatencyStats(mean_s=0.01)) for i, (a, b) in enumerate(spans))
    run = {"runtime": "tf-function", "compile_s": 1.5, "blocks_compile_s": [0.8, 1.0, 0.2],
           "whole_model_median_s": 0.03}
    write_model(tmp_path / "measured", Resource("edge", "x"), ModelProfile("mobilenetv2", blocks, run=run), {})
    script = _script()
    rate, source = script.compile_rate(tmp_path / "measured")
    assert rate == pytest.approx(0.2) and source["runtime"] == "tf-function" and source["layers"] == 10
    script.main(["--compiled", str(tmp_path / "measured"), "--out", str(tmp_path / "priced")])
    edge = next(p for p in load_profiles(tmp_path / "priced") if p.resource.label == "edge-2500")
    model = edge.models["resnet50"]
    n = len(model.blocks)
    assert model.runtime == "tf-function" and len(model.run["blocks_compile_s"]) == n
    assert compile_price(model.run, n, 0, n - 1) == pytest.approx(model.run["compile_s"])
    layers = [b.last_layer - b.first_layer + 1 for b in model.blocks]
    per_layer = [c / k for c, k in zip(model.run["blocks_compile_s"], layers, strict=True)]
    assert max(per_layer) == pytest.approx(min(per_layer))  # one rate per machine, times each block's layers
    assert model.run["wall_s"] > 0 and model.run["compile_priced_from"]["model"] == "mobilenetv2"


def test_side_by_side_compile_times_are_priced_in_eager_passes(tmp_path):
    import json

    results = {"date": "d", "models": [{"model": "resnet50", "auto": {"runtime": "tf-function", "table": {
        "tf-function": {"compile_s": 4.0}}}, "side_by_side": {"eager": {"median_s": 2.0}}}]}
    path = tmp_path / "side.json"
    path.write_text(json.dumps(results))
    _script().main(["--side-by-side", str(path), "--out", str(tmp_path / "priced")])
    for profile in load_profiles(tmp_path / "priced"):
        resnet = profile.models["resnet50"]
        assert resnet.runtime == "tf-function"
        # 4 s of compile = 2 eager passes here, so 2 x the model's latency on that machine
        assert resnet.run["compile_s"] == pytest.approx(2 * sum(resnet.latencies_s))
        assert "compile_s" not in profile.models["vgg16"].run and profile.models["vgg16"].runtime == "eager"
