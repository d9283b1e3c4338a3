"""Run results without Docker: the profile prediction as the headline, the speed-adjusted one as a diagnostic."""

from __future__ import annotations

import pandas as pd

from testbed.run.speeds import adjusted_latency, speed_factors
from testbed.run.summary import figure_rows, render_markdown, summarise

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


def test_the_headline_is_the_profile_prediction_and_speed_adjusted_is_a_diagnostic_beside_it():
    """Issue 13: the headline is what a user has before measuring (the profiles), even when speed probes taken
    during the measurement would flatter it; the speed-adjusted figures stay beside it."""
    s = summarise(_configs([0.41, 0.31, 0.50]))
    assert s["prediction"] == "profile"
    assert s["predicted_best"] == "a"
    assert abs(s["regret"] - (0.40 / 0.32 - 1)) < 1e-12 and s["spearman"] == 0.5
    adjusted = s["speed_adjusted"]
    assert adjusted["spearman"] == 1.0 and adjusted["regret"] == 0.0 and adjusted["predicted_best"] == "b"
    assert "profile_only" not in s
    rows = figure_rows([{"topology": "t", "model": "m", **s}])
    assert "| profile | 3.8% | 0.500 | 25.0% |" in rows[0] and "speed-adjusted (diagnostic)" in rows[1]
    table = render_markdown("x", "t", 3, 1, [{"topology": "t", "model": "m", **s}], {}, [], [])
    first = table.split("\n\n")[2].splitlines()  # the first table: header, rule, headline row
    assert "| profile | 3.8% | 0.500 | 25.0% |" in first[2]


def test_an_older_summary_is_shown_profile_first():
    old = {"topology": "t", "model": "m", "configurations": 3, "prediction": "speed-adjusted",
           "median_rel_error": 0.01, "spearman": 1.0, "regret": 0.0,
           "profile_only": {"median_rel_error": 0.2, "spearman": 0.5, "regret": 0.25}}
    rows = figure_rows([old])
    assert "| profile | 20.0% | 0.500 | 25.0% |" in rows[0] and "| 1.0% | 1.000 | 0.0% |" in rows[1]


def test_without_probes_the_profile_prediction_is_the_headline():
    s = summarise(_configs([float("nan")] * 3))
    assert s["prediction"] == "profile" and "speed_adjusted" not in s
    assert s["predicted_best"] == "a"
