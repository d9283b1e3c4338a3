"""Run results without Docker: the speed-adjusted prediction and the three figures computed from it."""

from __future__ import annotations

import pandas as pd

from scission.problem import Configuration, Placement
from testbed.results import summarise
from testbed.run import adjusted_prediction


def _placement(tier, resource, first, last, compute_s):
    return Placement(tier, resource, first, last, first, last, compute_s, 0.0)


def test_only_computing_nodes_are_rescaled_and_transfers_stay():
    config = Configuration(latency_s=0.7, transfer_bytes=1e5, transfer_s=0.2, placements=(
        _placement("device", "dev", 0, 3, 0.3), _placement("edge", None, -1, -1, 0.0),
        _placement("cloud", "cloud", 4, 9, 0.2)))
    assert adjusted_prediction(config, {}) == 0.7
    assert abs(adjusted_prediction(config, {"dev": 1.5, "cloud": 0.5}) - (0.2 + 0.45 + 0.1)) < 1e-12
    assert adjusted_prediction(config, {"edge": 9.0}) == 0.7  # a node that runs nothing changes nothing


def _configs(adjusted):
    return pd.DataFrame({
        "config": ["a", "b", "c"],
        "predicted_s": [0.30, 0.31, 0.50],
        "predicted_adjusted_s": adjusted,
        "measured_s": [0.40, 0.32, 0.52],
    })


def test_figures_use_the_speed_adjusted_prediction_and_keep_the_profile_only_ones():
    s = summarise(_configs([0.41, 0.31, 0.50]))
    assert s["prediction"] == "speed-adjusted"
    assert s["spearman"] == 1.0 and s["regret"] == 0.0 and s["predicted_best"] == "b"
    assert s["profile_only"]["predicted_best"] == "a"
    assert abs(s["profile_only"]["regret"] - (0.40 / 0.32 - 1)) < 1e-12
    assert s["profile_only"]["spearman"] == 0.5


def test_without_probes_the_profile_prediction_is_the_headline():
    s = summarise(_configs([float("nan")] * 3))
    assert s["prediction"] == "profile" and "profile_only" not in s
    assert s["predicted_best"] == "a"
