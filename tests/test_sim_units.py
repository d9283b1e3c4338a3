"""Pure parts of the simulator: splits, traces and streaming statistics."""

from __future__ import annotations

import numpy as np
import pytest

from scission.problem import DEFAULT_TIERS, BlockLayers
from testbed.errors import ConfigurationError, TraceError
from testbed.sim.conditions import build_trace
from testbed.sim.spec import ConditionSpec
from testbed.sim.stats import LatencyHistogram, Timeline, mean_ci
from testbed.sim.streams import stream
from testbed.sim.world import Split

ONE_PER_BLOCK = BlockLayers.one_per_block(66)  # layer ids and block ids coincide


@pytest.mark.parametrize(
    "text, counts",
    [
        ("device:0-9,edge:10-65", (10, 56, 0)),
        ("device:0-65", (66, 0, 0)),
        ("edge:0-65", (0, 66, 0)),
        ("device:0-0,cloud:1-65", (1, 0, 65)),
        ("cloud-only", (0, 0, 66)),
        (" device : 0 - 9 , cloud : 10 - 65 ", (10, 0, 56)),
    ],
)
def test_split_ids_parse_and_print_back(text, counts):
    split = Split.parse(text, DEFAULT_TIERS, ONE_PER_BLOCK)
    assert split.counts == counts
    assert Split.parse(split.id, DEFAULT_TIERS, ONE_PER_BLOCK) == split


@pytest.mark.parametrize(
    "text, message",
    [
        ("device:0-9,edge:11-65", "next layer to run is 10"),
        ("device:0-9", "covers layers 0-9"),
        ("edge:0-9,device:10-65", "in order"),
        ("fog:0-65", "tier 'fog'"),
        ("device 0-65", "not 'tier:first-last'"),
        ("device:0-70", "70 ends no block"),
    ],
)
def test_unknown_configurations_say_why(text, message):
    with pytest.raises(ConfigurationError, match=message):
        Split.parse(text, DEFAULT_TIERS, ONE_PER_BLOCK)


def test_csv_trace_is_read_and_checked(tmp_path):
    path = tmp_path / "bw.csv"
    path.write_text("time_s,bandwidth_mbps\n0,5\n10,2.5\n20,5\n")
    trace = build_trace(ConditionSpec(kind="csv", link=("a", "b"), path=path))
    assert list(trace.changes(stream(1, "x"))) == [(0.0, 5.0), (10.0, 2.5), (20.0, 5.0)]


@pytest.mark.parametrize(
    "body, message",
    [
        ("time_s,bandwidth_mbps\n0,5\n10,0\n", "bandwidth 0 Mbit/s must be greater than 0"),
        ("time_s,bandwidth_mbps\n10,5\n5,2\n", "comes before"),
        ("time,bw\n0,5\n", "expected columns time_s and bandwidth_mbps"),
        ("time_s,bandwidth_mbps\n0,fast\n", "must be numbers"),
    ],
)
def test_bad_csv_traces_are_refused(tmp_path, body, message):
    path = tmp_path / "bw.csv"
    path.write_text(body)
    with pytest.raises(TraceError, match=message):
        build_trace(ConditionSpec(kind="csv", link=("a", "b"), path=path))


def test_load_outside_zero_to_one_is_refused():
    with pytest.raises(TraceError, match="background load 1.5"):
        build_trace(ConditionSpec(kind="step", node="edge", load=[(0, 1.5)]))


def test_random_walk_is_seeded_and_stays_in_bounds():
    spec = ConditionSpec(kind="random-walk", link=("a", "b"), start=2.0, step_s=1.0, sigma_pct=50, min=0.5, max=4.0)
    trace = build_trace(spec)

    def first(n, seed):
        out = []
        for point in trace.changes(stream(seed, "w")):
            out.append(point)
            if len(out) == n:
                return out

    a, b = first(500, 3), first(500, 3)
    assert a == b and a != first(500, 4)
    assert [t for t, _ in a[:3]] == [0.0, 1.0, 2.0]
    assert all(0.5 <= v <= 4.0 for _, v in a)


def test_histogram_percentiles_are_within_a_tenth_of_a_percent():
    x = np.random.default_rng(0).lognormal(-1, 1, 200_000)
    hist = LatencyHistogram()
    hist.add_many(x)
    for q in (0.5, 0.95, 0.99):
        exact = float(np.quantile(x, q, method="inverted_cdf"))
        assert hist.quantile(q) == pytest.approx(exact, rel=1e-3)
    assert hist.mean_s == pytest.approx(float(x.mean()), rel=1e-12)


def test_timeline_stays_bounded_by_merging_windows():
    tl = Timeline(width_s=1.0, max_windows=100)
    for t in range(10_000):
        tl.add(t + 0.5, 1.0)
    assert len(tl.sums) <= 100
    assert sum(c for _, _, c in tl.rows()) == 10_000
    assert tl.width_s == 128.0


def test_confidence_interval_over_seeds():
    m, h = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and h == pytest.approx(4.303 * 1.0 / 3**0.5)
    assert mean_ci([5.0]) == (5.0, 0.0)


def test_empirical_block_times_are_sums_of_measured_samples():
    from test_sim_helpers import topology

    from scission.profiles import Block, LatencyStats, ModelProfile, Profile, Resource
    from testbed.sim.world import World

    blocks = (Block(0, 0, 0, 10, LatencyStats.from_samples([0.1, 0.2])),
              Block(1, 1, 1, 10, LatencyStats.from_samples([1.0, 2.0])))
    profile = Profile(Resource("device", "d"), {"m": ModelProfile("m", blocks)})
    world = World(topology([("device", "device", 1.0)], []), [profile], {"device": "device-d"}, "m")
    const, draw = world.service_sampler("device", 0, 1, "auto", 0.1)
    assert const is None
    values = set(np.round(draw(np.random.default_rng(0), 1000), 9))
    assert values == {1.1, 1.2, 2.1, 2.2}
    assert world.service_sampler("device", 0, 1, "deterministic", 0.1)[0] == pytest.approx(0.15 + 1.5)


def test_world_best_translates_scissions_errors_and_keeps_programming_errors(monkeypatch):
    from test_sim_helpers import three_tier

    import testbed.sim.world as world_module
    from scission.errors import ScissionError

    world = three_tier()

    def infeasible(problem, k):
        raise ScissionError("no configuration meets the constraints")

    monkeypatch.setattr(world_module, "search_problem", infeasible)
    with pytest.raises(ConfigurationError, match="scission cannot partition m for device device: no configuration"):
        world.best("device", {}, {}, 1)

    def broken(problem, k):
        raise TypeError("a bug")

    monkeypatch.setattr(world_module, "search_problem", broken)
    with pytest.raises(TypeError, match="a bug"):  # not relabelled as a partition problem
        world.best("device", {}, {}, 2)


def test_load_world_names_the_file_part_that_failed(tmp_path):
    from test_sim_helpers import spec

    from testbed.errors import SimulationFileError
    from testbed.sim.world import load_world

    (tmp_path / "t.yaml").write_text("name: BAD NAME\nnodes: []\nlinks: []\n")
    s = spec(topology=str(tmp_path / "t.yaml"))
    with pytest.raises(SimulationFileError, match=r"^topology: "):
        load_world(s)


def test_a_spec_copy_changes_fields_and_refuses_names_that_are_not_fields():
    from test_sim_helpers import spec

    s = spec(stop={"duration_s": 10})
    assert s.with_stop(requests=5).requests == 5 and s.with_stop(requests=5).duration_s is None
    assert s.model_copy(update={"seeds": (3, 4)}).seeds == (3, 4)
    with pytest.raises(TypeError, match="with_stop"):
        s.model_copy(update={"requests": 5})
