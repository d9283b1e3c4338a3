"""Issue 13: a tier that runs blocks in a compiled runtime pays its resource's per-call overhead once."""

from __future__ import annotations

import json

import pytest

from scission.bruteforce import brute_force
from scission.errors import ScissionError
from scission.network import NetworkLink, NetworkTable
from scission.problem import Candidate, Problem, Tier, TierConstraints, evaluate
from scission.report import as_dict
from scission.search import search

LAYERS = (0, 1, 2, 3)


def _problem(device_overhead=0.0, edge_overhead=0.0, constraints=None):
    device = Candidate("dev", (0.1, 0.1, 0.1, 0.1), (1000, 1000, 1000, 1000), LAYERS, LAYERS, device_overhead)
    edge = Candidate("edge", (0.01, 0.01, 0.01, 0.01), (1000, 1000, 1000, 1000), LAYERS, LAYERS, edge_overhead)
    net = NetworkTable([NetworkLink("dev", "edge", 0.0, 1000.0)])
    return Problem((Tier("device", (device,)), Tier("edge", (edge,))), net, input_bytes=0,
                   constraints=constraints or {})


def test_overhead_is_paid_once_per_running_tier_not_per_block():
    problem = _problem(device_overhead=0.02, edge_overhead=0.5)
    both = evaluate(problem, ["dev", "edge"], [2, 2])
    assert [p.compute_s for p in both.placements] == [pytest.approx(0.22), pytest.approx(0.52)]
    assert [p.call_overhead_s for p in both.placements] == [0.02, 0.5]
    device_only = evaluate(problem, ["dev", None], [4, 0])
    assert device_only.placements[1].call_overhead_s == 0.0 and device_only.placements[1].compute_s == 0.0
    assert device_only.compute_s == pytest.approx(0.42)
    edge_only = evaluate(problem, ["dev", "edge"], [0, 4])
    assert edge_only.placements[0].call_overhead_s == 0.0  # the device holds the input, runs nothing
    assert edge_only.compute_s == pytest.approx(0.54)


def test_overhead_changes_the_best_partition():
    # without it, the edge (10x faster per block) wins; at 0.5 s per call the device keeps everything
    assert search(_problem(), 1)[0].placements[1].runs
    best = search(_problem(edge_overhead=0.5), 1)[0]
    assert not best.placements[1].runs
    assert [c.latency_s for c in search(_problem(edge_overhead=0.5), 5)] == \
        [c.latency_s for c in brute_force(_problem(edge_overhead=0.5), 5)]


def test_time_cap_counts_the_overhead():
    cap = {"edge": TierConstraints(time_cap_s=0.3)}
    got = search(_problem(edge_overhead=0.29, constraints=cap), 10)
    assert got and all(p.compute_s <= 0.3 for c in got for p in c.placements if p.tier == "edge")
    assert max(c.placements[1].last_block - c.placements[1].first_block + 1 for c in got if c.placements[1].runs) == 1


def test_json_names_the_overhead_per_tier():
    config = search(_problem(device_overhead=0.02, edge_overhead=0.03), 1)[0]
    tiers = json.loads(json.dumps(as_dict(1, config)))["tiers"]
    assert all(isinstance(t["call_overhead_s"], float) for t in tiers)
    assert sum(t["call_overhead_s"] for t in tiers) == pytest.approx(
        sum(0.02 if t["tier"] == "device" else 0.03 for t in tiers if t["first_block"] >= 0))


def test_a_negative_overhead_is_refused():
    with pytest.raises(ScissionError, match="call overhead"):
        Candidate("x", (0.1,), (1,), (0,), (0,), -0.1)


def test_profile_overhead_reaches_the_candidate():
    from scission.partition import candidate_from_model
    from scission.profiles import Block, LatencyStats, ModelProfile

    blocks = tuple(Block(i, i, i, 100, LatencyStats(mean_s=0.01)) for i in range(3))
    model = ModelProfile("m", blocks, run={"runtime": "tf-function", "call_overhead_s": 0.004})
    assert candidate_from_model("r", model).call_overhead_s == 0.004
    assert candidate_from_model("r", ModelProfile("m", blocks)).call_overhead_s == 0.0
