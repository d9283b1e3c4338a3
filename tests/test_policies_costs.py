"""Issue 13 point 5: what refreshing and switching cost, as the policies price them (pure, no simulator)."""

from __future__ import annotations

import pytest
from test_policies_fakes import FakePlanner

from testbed.errors import ConfigurationError
from testbed.policies import make_policy
from testbed.policies.api import Benchmark, BenchmarkDone, Conditions, Recalibrate, Started, Tick
from testbed.policies.costs import RECALIBRATION_PASSES, benchmark_price, compile_price, recalibration_price
from testbed.policies.plans import switch_work_s
from testbed.sim.spec import PolicySpec

COMPILED = {"runtime": "tf-function", "compile_s": 4.0, "blocks_compile_s": [0.5, 1.0, 1.5, 2.0],
            "whole_model_median_s": 0.03, "call_overhead_s": 0.002, "wall_s": 9.0}


def test_compile_price_sums_the_blocks_of_the_new_range():
    assert compile_price(COMPILED, 4, 1, 2) == pytest.approx(2.5)
    assert compile_price(COMPILED, 4, 0, 3) == pytest.approx(5.0)


def test_compile_price_scales_the_whole_models_compile_time_without_a_per_block_list():
    run = {k: v for k, v in COMPILED.items() if k != "blocks_compile_s"}
    assert compile_price(run, 4, 1, 2) == pytest.approx(4.0 * 2 / 4)
    # a list of the wrong length is not this model's: fall back to the scaled figure
    assert compile_price({**run, "blocks_compile_s": [1.0]}, 4, 0, 0) == pytest.approx(1.0)


def test_eager_and_legacy_profiles_compile_for_free():
    assert compile_price({**COMPILED, "runtime": "eager"}, 4, 0, 3) == 0.0
    assert compile_price({}, 4, 0, 3) == 0.0  # version 1 / legacy: no runtime, no figures
    assert compile_price({"wall_s": 3.0}, 4, 0, 3) == 0.0


def test_recalibration_price_is_the_measured_cost_when_the_profile_records_one():
    run = {**COMPILED, "recalibrated_from": {"profile": "p", "factor": 1.2, "passes": 1, "cost_s": 0.041}}
    price = recalibration_price(run, [0.01] * 4, 0.002)
    assert (price.work_s, price.measured) == (0.041, True)


def test_recalibration_price_without_a_measurement_is_a_stated_estimate():
    price = recalibration_price(COMPILED, [0.01] * 4, 0.002)
    assert price.work_s == pytest.approx(RECALIBRATION_PASSES * 0.03) and not price.measured
    assert "estimate" in price.source and str(RECALIBRATION_PASSES) in price.source
    legacy = recalibration_price({"wall_s": 9.0}, [0.25, 0.25], 0.0)  # no whole-model median: sum of blocks
    assert legacy.work_s == pytest.approx(RECALIBRATION_PASSES * 0.5) and not legacy.measured
    assert benchmark_price(COMPILED).work_s == 9.0 and benchmark_price({}) is None


class RangePlanner(FakePlanner):
    """Three nodes, four blocks; configuration ids are 'd-e-c' block counts; edge compiles 1 s per block."""

    def ranges(self, device, config_id):
        counts = [int(c) for c in config_id.split("-")]
        out, start = {}, 0
        for node, count in zip(("device", "edge", "cloud"), counts, strict=True):
            if count:
                out[node] = (start, start + count - 1)
            start += count
        return out

    def compile_work_s(self, node, first, last):
        return {"device": 0.0, "edge": 1.0, "cloud": 0.5}[node] * (last - first + 1)


def test_a_switch_charges_only_the_nodes_whose_block_range_changes():
    p = RangePlanner()
    assert switch_work_s(p, "device", "1-2-1", "1-3-0") == {"edge": 3.0}  # cloud stops: free; device keeps 0-0
    assert switch_work_s(p, "device", "1-2-1", "0-3-1") == {"edge": 3.0}  # cloud keeps 3-3; device compiles for free
    assert switch_work_s(p, "device", "1-2-1", "1-1-2") == {"edge": 1.0, "cloud": 1.0}
    assert switch_work_s(p, "device", "1-2-1", "1-2-1") == {}
    assert switch_work_s(p, "device", None, "0-0-4") == {}  # the first deployment is compiled before the run


def _periodic(refresh, **extra):
    settings = PolicySpec(kind="periodic", period_s=5, refresh=refresh, **extra)
    planner = FakePlanner(wall_s={"device": 9.0, "edge": 9.0, "cloud": 9.0})
    planner.recalibrate_work_s = lambda node: {"device": 0.3, "edge": 0.2, "cloud": 0.1}[node]
    return make_policy(settings, planner)


def test_periodic_recalibrates_at_the_planners_price_instead_of_benchmarking():
    policy = _periodic("recalibrate")
    policy.start(Started(0.0, Conditions({}, {})))
    (action,) = policy.observe(Tick(5.0, "benchmark"))
    assert isinstance(action, Recalibrate) and dict(action.work_s) == {"device": 0.3, "edge": 0.2, "cloud": 0.1}
    assert policy.observe(Tick(10.0, "benchmark")) == []  # still running: skipped, as a benchmark would be
    assert policy.observe(BenchmarkDone(10.2, ("device",), Conditions({}, {})))
    (benchmark,) = _periodic(None).observe(Tick(5.0, "benchmark"))
    assert type(benchmark) is Benchmark and dict(benchmark.work_s) == {"device": 9.0, "edge": 9.0, "cloud": 9.0}
    (given,) = _periodic("recalibrate", overhead_s=0.5).observe(Tick(5.0, "benchmark"))
    assert set(given.work_s.values()) == {0.5}


def test_adaptive_with_a_refresh_asks_for_the_round_then_decides_with_what_it_measured():
    settings = PolicySpec(kind="adaptive", probe_period_s=1, probe_bytes=1000, threshold_pct=30, confirm=1,
                          cooldown_s=0, alpha=1.0, refresh="recalibrate", overhead_s=0.1)
    planner = FakePlanner()
    policy = make_policy(settings, planner)
    policy.start(Started(0.0, Conditions({}, {})))
    from testbed.policies.api import LinkProbed

    policy.observe(Tick(1.0, "probe"))
    policy.observe(LinkProbed(1.1, ("device", "edge"), 0.5))
    (action,) = policy.observe(LinkProbed(1.2, ("edge", "cloud"), 8.0))
    assert isinstance(action, Recalibrate)
    (switch,) = policy.observe(BenchmarkDone(1.5, ("device", "edge", "cloud"), Conditions({}, {"edge": 0.5})))
    assert switch.config_id == "device:0-0"  # the uplink's probed 0.5 Mbit/s makes the upload too slow
    assert planner.asked[-1][1][("device", "edge")] == 0.5 and planner.asked[-1][2]["edge"] == 0.5


def test_a_periodic_policy_refuses_refresh_none():
    with pytest.raises(ConfigurationError, match="not 'none'"):
        make_policy(type("S", (), {"kind": "periodic", "name": "p", "period_s": 5, "overhead_s": 1.0,
                                   "refresh": "none"})(), FakePlanner())
