"""Issue 13 in the simulator: the call overhead once per compute stage, and what refreshing and switching cost."""

from __future__ import annotations

import pytest
from test_policies_drivers import Recording
from test_sim_helpers import RESOURCES, arrivals_csv, profile, simulate, spec, topology

from scission.errors import ScissionError
from testbed.policies import make_policy
from testbed.policies.api import Recalibrate, Started
from testbed.sim.conditions import build_trace
from testbed.sim.driver import SimDriver, WorldPlanner
from testbed.sim.engine import Simulation
from testbed.sim.world import World

EDGE, DEVICE = "edge:0-0", "device:0-0"
# one block; device 1 s, edge 0.1 s, cloud 0.05 s net of a call overhead of 20 / 10 / 5 ms; 100 kB input
# over 8 Mbit/s links with 100 ms RTT; each compiled in tf-function with its compile time and whole median
RUNS = {
    "device": {"runtime": "tf-function", "call_overhead_s": 0.02, "whole_model_median_s": 0.5,
               "compile_s": 0.7, "blocks_compile_s": [0.7], "wall_s": 30.0},
    "edge": {"runtime": "tf-function", "call_overhead_s": 0.01, "whole_model_median_s": 0.05,
             "compile_s": 0.3, "blocks_compile_s": [0.3], "wall_s": 30.0},
    "cloud": {"runtime": "tf-function", "call_overhead_s": 0.005, "whole_model_median_s": 0.025,
              "compile_s": 0.2, "blocks_compile_s": [0.2], "wall_s": 30.0},
}


def compiled_world(blocks=((1.0, 0.1, 0.05),), runs=RUNS):
    topo = topology([("device", "device", 1.0), ("edge", "edge", 1.0), ("cloud", "cloud", 1.0)],
                    [("device", "edge", 8.0, 100.0), ("edge", "cloud", 8.0, 100.0)])
    profiles = [profile(RESOURCES[tier], [(b[i], 1000) for b in blocks], run=runs[tier])
                for i, tier in enumerate(("device", "edge", "cloud"))]
    return World(topo, profiles, RESOURCES, "m", input_bytes=100_000)


def dip(start, end):
    return [{"kind": "step", "link": "device>edge", "bandwidth_mbps": [[0, 8.0], [start, 0.5], [end, 8.0]]}]


def run(tmp_path, world, policy, conditions=(), times=(29.0,), duration=30.0):
    s = spec(arrivals={"kind": "trace", "path": arrivals_csv(tmp_path, times)}, stop={"duration_s": duration},
             policies=[policy], conditions=list(conditions))
    sim, _ = simulate(world, s, traces=[build_trace(c) for c in s.conditions])
    return sim


@pytest.mark.parametrize("configuration", ["device:0-0,edge:1-1", "device:0-0,cloud:1-1", "edge-only",
                                           "edge:0-0,cloud:1-1", "device-only"])
def test_an_idle_request_costs_what_scission_predicts_with_the_overhead_once_per_tier(tmp_path, configuration):
    world = compiled_world(blocks=((0.5, 0.05, 0.025), (0.5, 0.05, 0.025)))
    sim = run(tmp_path, world, {"kind": "static", "configuration": configuration}, times=(1.0,), duration=10)
    split = world.parse_split(configuration)
    predicted = world.predicted_s("device", split, {}, {})
    assert sim.rec[0].latency_s == pytest.approx(predicted, rel=1e-9)
    overheads = sum(RUNS[tier]["call_overhead_s"] for tier, n in zip(world.tiers, split.counts, strict=True) if n)
    assert sim.rec[0].compute_s == pytest.approx(sum(
        b * n for b, n in zip((1.0, 0.1, 0.05), split.counts, strict=True)) / 2 + overheads)


def test_sampled_service_adds_the_overhead_once_too(tmp_path):
    world = compiled_world(blocks=((0.5, 0.05, 0.025), (0.5, 0.05, 0.025)))
    const, draw = world.service_sampler("edge", 0, 1, "exponential", 0.1)
    import numpy as np

    assert const is None and draw(np.random.default_rng(1), 20_000).mean() == pytest.approx(0.1 + 0.01, rel=0.03)
    assert world.mean_work_s("edge", 0, 1) == pytest.approx(0.11)


def test_periodic_recalibration_is_charged_its_price_and_a_switch_its_compile_time_on_changed_nodes(tmp_path):
    # Recalibration rounds every 5 s cost 2 passes x the whole median: 1.0 s on the device, 0.1 edge, 0.05 cloud.
    # The round at 10 s sees the dip (7-22 s) and ends at 11 s; going device-only compiles the device's block
    # (0.7 s; the edge stops, for free), so the switch lands at 11.7 s. The round at 25 s sees the return,
    # ends at 26 s, and the edge compiles its block again (0.3 s): 26.3 s.
    sim = run(tmp_path, compiled_world(), {"kind": "periodic", "period_s": 5, "refresh": "recalibrate"}, dip(7, 22))
    assert [(round(t, 6), split) for t, _, split in sim.split_log] == [(0, EDGE), (11.7, DEVICE), (26.3, EDGE)]
    assert sim.benchmarks == 5 and sim.recalibrations == 5
    assert sim.compile_work_s == pytest.approx(0.7 + 0.3)
    assert sim.overhead_work_s == pytest.approx(5 * (1.0 + 0.1 + 0.05) + 0.7 + 0.3)


def test_eager_profiles_switch_at_once_and_the_oracle_never_pays_compile_time(tmp_path):
    eager = {tier: {**r, "runtime": "eager"} for tier, r in RUNS.items()}
    sim = run(tmp_path, compiled_world(runs=eager), {"kind": "periodic", "period_s": 5, "refresh": "recalibrate"},
              dip(7, 22))
    assert [(round(t, 6), split) for t, _, split in sim.split_log] == [(0, EDGE), (11, DEVICE), (26, EDGE)]
    assert sim.compile_work_s == 0
    oracle = run(tmp_path, compiled_world(), {"kind": "oracle"}, dip(10, 20))
    assert [(round(t, 6), split) for t, _, split in oracle.split_log] == [(0, EDGE), (10, DEVICE), (20, EDGE)]
    assert oracle.overhead_work_s == 0


def test_the_simulators_observations_replayed_directly_give_the_same_decisions_with_recalibration(tmp_path):
    world = compiled_world()
    s = spec(arrivals={"kind": "trace", "path": arrivals_csv(tmp_path, [29.0])}, stop={"duration_s": 30},
             policies=[{"kind": "periodic", "period_s": 5, "refresh": "recalibrate"},
                       {"kind": "adaptive", "probe_period_s": 1, "probe_bytes": 1000, "threshold_pct": 30,
                        "confirm": 2, "cooldown_s": 0, "alpha": 1.0, "refresh": "recalibrate"}],
             conditions=dip(7, 22))
    for settings in s.policies:
        recording = Recording(make_policy(settings, WorldPlanner(world)))
        Simulation(world, s, SimDriver(recording, world), 1, [build_trace(c) for c in s.conditions],
                   record=True).run()
        fresh = make_policy(settings, WorldPlanner(compiled_world()))
        replayed = [fresh.start(o) if isinstance(o, Started) else fresh.observe(o) for o, _ in recording.log]
        assert replayed == [actions for _, actions in recording.log]
        rounds = [a for actions in replayed for a in actions if isinstance(a, Recalibrate)]
        assert rounds and dict(rounds[0].work_s) == pytest.approx({"device": 1.0, "edge": 0.1, "cloud": 0.05})


def test_a_negative_call_overhead_in_a_profile_is_refused():
    runs = {**RUNS, "edge": {**RUNS["edge"], "call_overhead_s": -1}}
    world = compiled_world(runs=runs)  # the profile reads a negative overhead as none (ModelProfile)
    assert world.problem("device", {}, {}).tiers[1].candidates[0].call_overhead_s == 0.0
    with pytest.raises(ScissionError):
        type(world.problem("device", {}, {}).tiers[1].candidates[0])("x", (0.1,), (1,), (0,), (0,), float("nan"))


# --- the file schema ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("policy", "fragments"), [
    ({"kind": "periodic", "period_s": 30, "overhead_s": 1, "refresh": "recalibrat"},
     ("policies[0].refresh", "'recalibrat' is not allowed", "'recalibrate'")),
    ({"kind": "periodic", "period_s": 30, "overhead_s": 1, "refresh": "none"}, ("policies[0]", "not 'none'")),
    ({"kind": "oracle", "refresh": "recalibrate"}, ("policies[0]", "only periodic and adaptive")),
    ({"kind": "adaptive", "refresh": 3}, ("policies[0].refresh",)),
])
def test_a_bad_refresh_is_one_line_naming_file_and_field(tmp_path, policy, fragments):
    from test_sim_cli import assert_one_line_exit_2, run_testbed, write_sim

    sim = write_sim(tmp_path, policies=[policy])
    assert_one_line_exit_2(run_testbed("simulate", str(sim)), str(sim), *fragments)


def test_recalibrating_on_legacy_profiles_runs_at_the_estimated_price(tmp_path):
    import json

    from test_sim_cli import run_testbed, write_sim

    sim = write_sim(tmp_path, stop={"duration_s": 120}, arrivals={"kind": "poisson", "rate_per_s": 0.2},
                    policies=[{"kind": "periodic", "period_s": 30, "refresh": "recalibrate", "name": "recal"}])
    out = run_testbed("simulate", str(sim), "--json")
    assert out.returncode == 0, out.stderr
    runs = json.loads(out.stdout)["policies"]["recal"]
    assert runs["recalibrations"] == runs["benchmarks"] > 0
    assert runs["compile_work_s"] == 0  # legacy profiles are eager: switching compiles nothing


def test_a_later_switch_supersedes_one_still_compiling(tmp_path):
    from testbed.policies.api import Every, Policy, Switch, Tick
    from testbed.sim.spec import PolicySpec

    class Flip(Policy):
        """edge at 0 s; device at 0.5 s (compiles 0.7 s, until 1.2 s); back to edge, still in use, at 1.0 s."""

        def start(self, obs):
            return [Switch("device", EDGE), Every(0.5, "t")]

        def observe(self, obs):
            if isinstance(obs, Tick):
                return {0.5: [Switch("device", DEVICE)], 1.0: [Switch("device", EDGE)]}.get(round(obs.now_s, 6), [])
            return []

    world = compiled_world()
    s = spec(arrivals={"kind": "trace", "path": arrivals_csv(tmp_path, [1.1, 3.0])}, stop={"duration_s": 5})
    sim = Simulation(world, s, SimDriver(Flip(PolicySpec(kind="static", configuration=EDGE), WorldPlanner(world)),
                                         world), 1, [], record=True)
    sim.run()
    assert [(round(t, 6), split) for t, _, split in sim.split_log] == [(0, EDGE)]  # the device never took over
    assert sim.compile_work_s == pytest.approx(0.7)  # back to the split in use: nothing to compile
    assert [r.config for r in sim.rec] == [EDGE, EDGE]
