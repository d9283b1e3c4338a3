"""Policies as timelines of (time, device, split): when each one re-partitions and what it costs."""

from __future__ import annotations

import pytest
from test_sim_helpers import arrivals_csv, profile, simulate, spec, three_tier, topology

from testbed.sim.conditions import build_trace
from testbed.sim.runner import run_one
from testbed.sim.world import World

# One block: device 1 s; edge 0.1 s; cloud 0.05 s; 100 kB input over 8 Mbit/s links with 100 ms RTT.
# edge-only costs 0.05 + 0.1 + 0.1 = 0.25 s and wins; at 0.5 Mbit/s the upload alone takes 1.6 s and
# device-only (1 s) wins.
EDGE, DEVICE = "edge:0-0", "device:0-0"


def world():
    return three_tier(device_s=1.0, edge_s=0.1, cloud_s=0.05, bw_mbps=8.0, rtt_ms=100.0, input_bytes=100_000)


def dip(start, end):
    return [{"kind": "step", "link": "device>edge", "bandwidth_mbps": [[0, 8.0], [start, 0.5], [end, 8.0]]}]


def run(tmp_path, policy, conditions, times=(29.0,), duration=30.0):
    s = spec(arrivals={"kind": "trace", "path": arrivals_csv(tmp_path, times)}, stop={"duration_s": duration},
             policies=[policy], conditions=conditions)
    sim, raw = simulate(world(), s, traces=[build_trace(c) for c in s.conditions])
    return sim, raw


def splits(sim):
    return [(round(t, 6), d, split) for t, d, split in sim.split_log]


def test_oracle_follows_every_condition_change_at_no_cost(tmp_path):
    sim, _ = run(tmp_path, {"kind": "oracle"}, dip(10, 20))
    assert splits(sim) == [(0, "device", EDGE), (10, "device", DEVICE), (20, "device", EDGE)]
    assert sim.repartitions == 2 and sim.overhead_work_s == 0


def test_static_rank_two_is_the_runner_up(tmp_path):
    sim, _ = run(tmp_path, {"kind": "static", "rank": 2}, [])
    assert splits(sim) == [(0, "device", "cloud:0-0")]  # 0.05 + 0.1 + 0.05 + 0.1 + 0.05 = 0.35 s


def test_periodic_pays_the_benchmark_then_repartitions_with_what_it_measured(tmp_path):
    # Benchmarks start every 5 s and take 1 s on each node; the dip (7-22 s) is seen by the one at 10 s
    # and applied when it ends at 11 s; the return is seen at 25 s and applied at 26 s.
    sim, _ = run(tmp_path, {"kind": "periodic", "period_s": 5, "overhead_s": 1.0}, dip(7, 22))
    assert splits(sim) == [(0, "device", EDGE), (11, "device", DEVICE), (26, "device", EDGE)]
    assert sim.benchmarks == 5 and sim.repartitions == 2
    assert sim.overhead_work_s == pytest.approx(5 * 3 * 1.0)


def test_periodic_takes_its_overhead_from_the_profiles_wall_time(tmp_path):
    topo = topology([("device", "device", 1.0), ("edge", "edge", 1.0)], [("device", "edge", 8.0, 100.0)])
    w = World(topo, [profile("device-d", [(1.0, 1000)], run={"wall_s": 2.5}),
                     profile("edge-e", [(0.1, 1000)], run={"wall_s": 0.5})],
              {"device": "device-d", "edge": "edge-e"}, "m", input_bytes=100_000)
    s = spec(arrivals={"kind": "trace", "path": arrivals_csv(tmp_path, [9.0])}, stop={"duration_s": 10},
             policies=[{"kind": "periodic", "period_s": 4}])
    result = run_one(w, s, s.policies[0], seed=1)
    assert result.summary["benchmarks"] == 2  # at 4 s and 8 s
    assert result.summary["overhead_work_s"] == pytest.approx(2 * (2.5 + 0.5))
    assert 0 < result.summary["overhead_fraction"] < 1


def test_a_benchmark_slows_the_requests_that_share_its_node(tmp_path):
    # A request arriving at 5 s on the device while a 1 s benchmark runs there shares the core.
    s = spec(arrivals={"kind": "trace", "path": arrivals_csv(tmp_path, [5.0])}, stop={"duration_s": 30},
             policies=[{"kind": "periodic", "period_s": 5, "overhead_s": 1.0}])
    w = three_tier(device_s=1.0, edge_s=0.1, cloud_s=0.05, bw_mbps=0.5, rtt_ms=100.0, input_bytes=100_000)
    sim, _ = simulate(w, s)
    assert splits(sim)[0] == (0, "device", DEVICE)
    # 1 s of request work and 1 s of benchmark work share one core from 5 s: both end at 7 s, not 6 s.
    assert sim.rec[0][4] == pytest.approx(7.0)


def test_adaptive_reacts_to_a_sustained_change_after_confirm_rounds(tmp_path):
    policy = {"kind": "adaptive", "probe_period_s": 1, "probe_bytes": 1000, "threshold_pct": 30, "confirm": 2,
              "cooldown_s": 0, "alpha": 1.0}
    sim, _ = run(tmp_path, policy, dip(10.5, 40))
    # probes at 11 s and 12 s both see 0.5 Mbit/s; the second round ends when its slow probe has crossed
    # the link: 12 + 1000 / 62,500 = 12.016 s.
    assert splits(sim) == [(0, "device", EDGE), (12.016, "device", DEVICE)]
    assert sim.probe_bytes > 0 and sim.overhead_work_s == 0


def test_adaptive_ignores_a_blip_shorter_than_its_hysteresis(tmp_path):
    policy = {"kind": "adaptive", "probe_period_s": 1, "probe_bytes": 1000, "threshold_pct": 30, "confirm": 2,
              "cooldown_s": 0, "alpha": 1.0}
    sim, _ = run(tmp_path, policy, dip(10.5, 11.5))
    assert splits(sim) == [(0, "device", EDGE)]


def test_regret_is_measured_against_the_oracle_of_the_same_seed(tmp_path):
    from testbed.sim.runner import run_simulation

    s = spec(arrivals={"kind": "poisson", "rate_per_s": 0.5}, stop={"duration_s": 60}, seeds=[1, 2],
             policies=[{"kind": "edge-only"}, {"kind": "oracle"}], conditions=dip(20, 40))
    result = run_simulation(s, world=world())
    p = result.summary["policies"]
    assert p["oracle"]["regret_s"] == 0
    assert p["edge-only"]["regret_s"] > 0.1  # 20 s of 1.6 s uploads instead of 1 s on the device
