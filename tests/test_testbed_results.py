"""Run results without Docker: the speed-adjusted prediction and the three figures computed from it."""

from __future__ import annotations

import pandas as pd

from testbed.run.speeds import adjusted_latency, speed_factors
from testbed.run.summary import summarise

TIERS = ("device", "edge", "cloud")


def test_factors_pool_every_probe_next_to_a_measurement_but_not_the_reference():
    speeds = pd.DataFrame([
        {"config": None, "node": "dev", "factor": 1.0},  # the reference, right after the benchmark
        {"config": "a", "node": "dev", "factor": 1.2}, {"config": "b", "node": "dev", "factor": 1.6},
        {"config": "b", "node": "dev", "factor": 1.4}, {"config": "b", "node": "cloud", "factor": None},
    ])
    assert speed_factors(speeds) == {"dev": 1.4}


def test_only_computing_nodes_are_rescaled_and_transfers_stay():
    row = pd.Series({"predicted_transfer_s": 0.2, "device_node": "dev", "device_compute_s": 0.3,
                     "edge_node": None, "edge_compute_s": 0.0, "cloud_node": "cloud", "cloud_compute_s": 0.2})
    assert abs(adjusted_latency(row, {"dev": 1.5, "cloud": 0.5}, TIERS) - (0.2 + 0.45 + 0.1)) < 1e-12
    assert abs(adjusted_latency(row, {"edge": 9.0}, TIERS) - 0.7) < 1e-12  # a node that runs nothing changes nothing
    assert pd.isna(adjusted_latency(row, {}, TIERS))  # no probes: no adjusted prediction


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
