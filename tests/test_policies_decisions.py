"""Each policy fed observations by hand (no driver, no SimPy): the actions it returns, step by step."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from test_policies_fakes import CLOUD, DEVICE, EDGE, HOPS, ONWARD, UP, FakePlanner

from testbed.errors import ConfigurationError, ResourceMissing
from testbed.policies import make_policy
from testbed.policies.adaptive import load_from_speed
from testbed.policies.api import (
    Benchmark,
    BenchmarkDone,
    Conditions,
    ConditionsChanged,
    Every,
    LinkProbed,
    NodeProbed,
    ProbeLink,
    ProbeNode,
    Started,
    Switch,
    Tick,
)
from testbed.sim.spec import PolicySpec

NOMINAL = Conditions({h: 8.0 for h in HOPS}, {})
DIPPED = Conditions({**{h: 8.0 for h in HOPS}, UP: 0.5}, {})


def policy(kind, planner=None, **fields):
    return make_policy(PolicySpec(kind=kind, name=fields.pop("name", kind), **fields), planner or FakePlanner())


# --- static and natives ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind, config", [("device-only", DEVICE), ("edge-only", EDGE), ("cloud-only", CLOUD)])
def test_a_native_runs_everything_on_its_tier_whatever_the_conditions(kind, config):
    p = policy(kind, FakePlanner(devices=("d1", "d2")))
    assert p.start(Started(0.0, DIPPED)) == [Switch("d1", config), Switch("d2", config)]
    assert p.observe(ConditionsChanged(5.0, NOMINAL)) == []


def test_natives_exist_for_every_tier_the_planner_knows():
    p = policy("gateway-only", FakePlanner(tiers=("device", "gateway", "edge", "cloud")))
    assert p.start(Started(0.0, NOMINAL)) == [Switch("device", "gateway:0-0")]
    with pytest.raises(ConfigurationError, match="gateway-only"):
        policy("gateway-only")  # three tiers: no gateway


def test_static_rank_takes_scissions_kth_at_the_start_and_keeps_it():
    p = policy("static", rank=2)
    assert p.start(Started(0.0, NOMINAL)) == [Switch("device", CLOUD)]
    assert p.observe(ConditionsChanged(1.0, DIPPED)) == []
    with pytest.raises(ConfigurationError, match="rank 4 asked, but scission found only 3"):
        policy("static", rank=4).start(Started(0.0, NOMINAL))


def test_a_static_configuration_is_validated_when_the_policy_is_made():
    assert policy("static", configuration=EDGE).start(Started(0.0, DIPPED)) == [Switch("device", EDGE)]
    with pytest.raises(ConfigurationError, match="unknown configuration 'edge:0-7'"):
        policy("static", configuration="edge:0-7")


def test_an_unknown_kind_names_the_kinds_there_are():
    # Settings need not come from a simulation file (a live driver has its own): make_policy checks the kind.
    settings = SimpleNamespace(kind="clairvoyant", name="clairvoyant")
    with pytest.raises(ConfigurationError, match="use one of static, device-only, edge-only, cloud-only, oracle"):
        make_policy(settings, FakePlanner())
    with pytest.raises(ConfigurationError, match="fog-only"):
        make_policy(SimpleNamespace(kind="fog-only", name="fog-only"), FakePlanner())


# --- oracle ---------------------------------------------------------------------------------------


def test_the_oracle_follows_every_true_change_and_nothing_else():
    p = policy("oracle")
    assert p.start(Started(0.0, NOMINAL)) == [Switch("device", EDGE)]
    assert p.observe(ConditionsChanged(10.0, DIPPED)) == [Switch("device", DEVICE)]
    assert p.observe(LinkProbed(11.0, UP, 8.0)) == []
    assert p.observe(Tick(12.0, "probe")) == []


# --- periodic -------------------------------------------------------------------------------------


def test_periodic_benchmarks_every_period_and_decides_with_the_conditions_at_the_rounds_start():
    planner = FakePlanner()
    p = policy("periodic", planner, period_s=5, overhead_s=1.0)
    assert p.start(Started(0.0, NOMINAL)) == [Switch("device", EDGE), Every(5, "benchmark")]
    assert p.observe(Tick(5.0, "benchmark")) == [Benchmark({"device": 1.0, "edge": 1.0, "cloud": 1.0})]
    assert p.observe(ConditionsChanged(5.5, DIPPED)) == []  # it cannot see the true conditions
    # the round started before the dip, so it reports (and the policy uses) the nominal conditions
    assert p.observe(BenchmarkDone(6.0, ("device", "edge", "cloud"), NOMINAL)) == [Switch("device", EDGE)]
    assert planner.asked[-1][1][UP] == 8.0
    p.observe(Tick(10.0, "benchmark"))
    assert p.observe(BenchmarkDone(11.0, ("device", "edge", "cloud"), DIPPED)) == [Switch("device", DEVICE)]


def test_periodic_skips_a_period_while_its_benchmark_still_runs():
    p = policy("periodic", period_s=5, overhead_s=8.0)
    p.start(Started(0.0, NOMINAL))
    assert len(p.observe(Tick(5.0, "benchmark"))) == 1
    assert p.observe(Tick(10.0, "benchmark")) == []  # the 8 s round is still out
    p.observe(BenchmarkDone(13.0, ("device", "edge", "cloud"), NOMINAL))
    assert p.observe(Tick(15.0, "benchmark")) == [Benchmark({"device": 8.0, "edge": 8.0, "cloud": 8.0})]


def test_periodic_takes_the_planners_benchmark_cost_and_says_what_to_do_without_one():
    p = policy("periodic", FakePlanner(wall_s={"device": 2.5, "edge": 0.5, "cloud": 0.25}), period_s=4)
    p.start(Started(0.0, NOMINAL))
    assert p.observe(Tick(4.0, "benchmark")) == [Benchmark({"device": 2.5, "edge": 0.5, "cloud": 0.25})]
    with pytest.raises(ResourceMissing, match="policy slow: .*no benchmark wall time; give overhead_s") as e:
        policy("periodic", FakePlanner(wall_s={"device": 2.5}), period_s=4, name="slow")
    assert e.value.node == "edge"


# --- adaptive -------------------------------------------------------------------------------------

ADAPTIVE = {"probe_period_s": 1, "probe_bytes": 1000, "threshold_pct": 30, "confirm": 2, "cooldown_s": 0, "alpha": 1.0}


def probe_round(p, now_s, up_mbps, onward_mbps=8.0):
    """One round: the tick, then both probes' answers; returns the actions of the tick and of the last answer."""
    asked = p.observe(Tick(now_s, "probe"))
    p.observe(LinkProbed(now_s + 0.01, ONWARD, onward_mbps))
    return asked, p.observe(LinkProbed(now_s + 0.02, UP, up_mbps))


def test_adaptive_probes_every_link_of_the_path_then_switches_after_confirm_rounds():
    p = policy("adaptive", **ADAPTIVE)
    assert p.start(Started(0.0, NOMINAL)) == [Switch("device", EDGE), Every(1, "probe")]
    asked, decided = probe_round(p, 1.0, 8.0)
    assert asked == [ProbeLink(UP, 1000), ProbeLink(ONWARD, 1000)] and decided == []
    assert probe_round(p, 11.0, 0.5)[1] == []  # first strike
    assert probe_round(p, 12.0, 0.5)[1] == [Switch("device", DEVICE)]  # second strike: confirmed
    assert p.last_change_s == pytest.approx(12.02)


def test_adaptive_ignores_a_blip_shorter_than_confirm_rounds():
    p = policy("adaptive", **ADAPTIVE)
    p.start(Started(0.0, NOMINAL))
    assert [probe_round(p, t, bw)[1] for t, bw in ((11.0, 0.5), (12.0, 8.0), (13.0, 0.5), (14.0, 8.0))] == [[]] * 4


def test_adaptive_waits_for_the_cooldown_since_its_last_change():
    p = policy("adaptive", **{**ADAPTIVE, "cooldown_s": 10})
    p.start(Started(0.0, NOMINAL))
    assert [probe_round(p, t, 0.5)[1] for t in (1.0, 2.0, 3.0)] == [[], [], []]  # confirmed, but cooling down
    assert probe_round(p, 10.0, 0.5)[1] == [Switch("device", DEVICE)]  # 10.02 s after the decision at 0


def test_adaptive_smooths_with_its_ewma_and_keeps_the_history_across_a_decision():
    p = policy("adaptive", **{**ADAPTIVE, "alpha": 0.5, "confirm": 1})
    p.start(Started(0.0, NOMINAL))
    probe_round(p, 1.0, 2.0)  # estimate 0.5 * 2 + 0.5 * 8 = 5: moved 37.5% > 30%, decided with 5 Mbit/s
    assert p.decided[("bw", UP)] == 5.0 and p.estimate[("bw", UP)] == 5.0


def test_adaptive_skips_a_tick_while_a_round_is_out_and_ignores_probes_it_did_not_send():
    p = policy("adaptive", **ADAPTIVE)
    p.start(Started(0.0, NOMINAL))
    assert p.observe(LinkProbed(0.5, UP, 0.1)) == []  # not its probe: no round is out
    assert len(p.observe(Tick(1.0, "probe"))) == 2
    assert p.observe(Tick(2.0, "probe")) == []
    assert p.observe(Tick(2.0, "benchmark")) == []  # not its timer


def test_adaptive_probes_nodes_and_turns_their_speed_into_load():
    planner = FakePlanner(capacity=2.0)
    p = policy("adaptive", planner, **{**ADAPTIVE, "probe_nodes": True, "probe_work_s": 0.01, "confirm": 1})
    p.start(Started(0.0, NOMINAL))
    asked = p.observe(Tick(1.0, "probe"))
    assert asked[2:] == [ProbeNode("device", 0.01), ProbeNode("edge", 0.01), ProbeNode("cloud", 0.01)]
    p.observe(LinkProbed(1.01, UP, 8.0))
    p.observe(LinkProbed(1.01, ONWARD, 8.0))
    p.observe(NodeProbed(1.02, "device", 1.0))
    p.observe(NodeProbed(1.02, "cloud", 1.0))
    assert p.observe(NodeProbed(1.05, "edge", 0.2)) == [Switch("device", CLOUD)]  # edge 90% loaded
    assert planner.asked[-1][2] == {"device": 0.0, "edge": 0.9, "cloud": 0.0}


@pytest.mark.parametrize("speed, capacity, load", [(1.0, 1.0, 0.0), (1.5, 2.0, 0.0), (0.5, 1.0, 0.5), (0.5, 2.0, 0.75),
                                                   (0.001, 1.0, 0.99)])
def test_a_compute_probes_speed_implies_a_background_load(speed, capacity, load):
    assert load_from_speed(speed, capacity) == pytest.approx(load)
