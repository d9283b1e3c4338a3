"""The SimPy model against closed forms and hand-computed timelines."""

from __future__ import annotations

import pytest
from test_sim_helpers import arrivals_csv, simulate, spec, three_tier, timeline

from testbed.sim.conditions import build_trace
from testbed.sim.spec import simulation_from_dict


def trace_spec(tmp_path, times, policy, **extra):
    return spec(arrivals={"kind": "trace", "path": arrivals_csv(tmp_path, times)},
                stop={"duration_s": 1000}, policies=[policy], **extra)


def test_a_single_transfer_takes_half_the_rtt_plus_bytes_over_bandwidth(tmp_path):
    # edge-only: the device sends the 100,000-byte input to the edge, which computes in zero time.
    world = three_tier(device_s=1.0, edge_s=0.0, bw_mbps=8.0, rtt_ms=100.0, input_bytes=100_000)
    sim, _ = simulate(world, trace_spec(tmp_path, [0.0], {"kind": "edge-only"}))
    expected = 0.100 / 2 + 100_000 / (8.0 * 125_000)  # 0.05 + 0.1
    assert sim.rec[0][5] == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_two_requests_share_one_core_processor_sharing(tmp_path):
    # 1 s of work each, arriving at 0 and 0.5: alone until 0.5, then half speed each.
    world = three_tier(device_s=1.0)
    sim, _ = simulate(world, trace_spec(tmp_path, [0.0, 0.5], {"kind": "device-only"}))
    assert timeline(sim) == [(1, 0.0, 1.5), (2, 0.5, 2.0)]


def test_two_cores_serve_two_requests_at_full_speed(tmp_path):
    world = three_tier(device_s=1.0, cpus=(2.0, 1.0, 1.0))
    sim, _ = simulate(world, trace_spec(tmp_path, [0.0, 0.5], {"kind": "device-only"}))
    assert timeline(sim) == [(1, 0.0, 1.0), (2, 0.5, 1.5)]


def test_a_third_request_on_two_cores_slows_all_three(tmp_path):
    # work 1 s each at 0, 0, 0.5 on 2 cores: from 0.5 all three get 2/3 speed, so the first two (0.5 s left)
    # leave at 1.25; the third has 0.5 s left then and runs alone at full speed until 1.75.
    world = three_tier(device_s=1.0, cpus=(2.0, 1.0, 1.0))
    sim, _ = simulate(world, trace_spec(tmp_path, [0.0, 0.0, 0.5], {"kind": "device-only"}))
    assert sorted(timeline(sim)) == [(1, 0.0, 1.25), (2, 0.0, 1.25), (3, 0.5, 1.75)]


def test_two_transfers_share_a_link(tmp_path):
    # 100 kB at 8 Mbit/s = 0.1 s alone; two at once take 0.2 s each, then 0.05 s propagation.
    world = three_tier(device_s=0.0, bw_mbps=8.0, rtt_ms=100.0, input_bytes=100_000)
    sim, _ = simulate(world, trace_spec(tmp_path, [0.0, 0.0], {"kind": "edge-only"}))
    assert timeline(sim) == [(1, 0.0, 0.25), (2, 0.0, 0.25)]


def test_a_request_runs_its_hops_in_order(tmp_path):
    # device 0.2 s, send 1000 B (1 ms at 8 Mbit/s) + 50 ms, edge 0.3 s, send 1000 B + 50 ms, cloud 0.1 s.
    world = three_tier(device_s=0.2, edge_s=0.3, cloud_s=0.1, blocks_out=(1000, 1000, 1000))
    world_blocks = [b.latency.mean_s for b in world.nodes["device"].profile.blocks]
    assert len(world_blocks) == 3
    # give each tier one block: device runs block 0, edge block 1, cloud block 2 (each a third of its time)
    sim, _ = simulate(world, trace_spec(tmp_path, [0.0], {"kind": "static", "configuration": "device:0-0,edge:1-1,cloud:2-2"}))
    expected = 0.2 / 3 + 0.001 + 0.05 + 0.3 / 3 + 0.001 + 0.05 + 0.1 / 3
    assert sim.rec[0][5] == pytest.approx(expected, rel=1e-12)
    assert sim.rec[0][2] == "device:0-0,edge:1-1,cloud:2-2"
    compute_s, transfer_s, propagation_s = sim.rec[0][6:9]
    assert compute_s == pytest.approx(0.2 / 3 + 0.3 / 3 + 0.1 / 3)
    assert transfer_s == pytest.approx(0.002) and propagation_s == pytest.approx(0.1)


def test_a_bandwidth_drop_mid_transfer_slows_the_rest_of_it(tmp_path):
    # 250 kB at 2 Mbit/s (250 kB/s): half done at 0.5 s, then 1 Mbit/s for the other 125 kB: 1 s more.
    world = three_tier(device_s=0.0, bw_mbps=2.0, rtt_ms=0.0, input_bytes=250_000)
    s = trace_spec(tmp_path, [0.0], {"kind": "edge-only"},
                   conditions=[{"kind": "step", "link": "device>edge", "bandwidth_mbps": [[0, 2.0], [0.5, 1.0]]}])
    sim, _ = simulate(world, s, traces=[build_trace(c) for c in s.conditions])
    assert timeline(sim) == [(1, 0.0, 1.5)]
    assert [(t, what) for t, what, _ in sim.change_log] == [(0.0, "device-edge bandwidth_mbps"), (0.5, "device-edge bandwidth_mbps")]


def test_background_load_takes_a_share_of_the_node(tmp_path):
    # load 0.5 on one core from t=0: a 1 s request runs at half speed.
    world = three_tier(device_s=1.0)
    s = trace_spec(tmp_path, [0.0], {"kind": "device-only"},
                   conditions=[{"kind": "step", "node": "device", "load": [[0, 0.5]]}])
    sim, _ = simulate(world, s, traces=[build_trace(c) for c in s.conditions])
    assert timeline(sim) == [(1, 0.0, 2.0)]


def test_mm1_mean_latency_matches_theory_over_a_long_run():
    # Exponential service (mean 0.1 s) and Poisson arrivals (5/s): rho 0.5, mean sojourn 1/(mu - lambda) = 0.2 s.
    world = three_tier(device_s=0.1)
    s = spec(arrivals={"kind": "poisson", "rate_per_s": 5.0}, stop={"requests": 300_000},
             service="exponential", policies=[{"kind": "device-only"}], records=False)
    sim, raw = simulate(world, s)
    hist = raw["histogram"]
    assert hist.n == 300_000
    assert hist.mean_s == pytest.approx(0.2, rel=0.03)
    assert raw["node_utilisation"]["device"] == pytest.approx(0.5, rel=0.03)


def test_the_same_seed_gives_the_same_result_and_another_seed_does_not():
    world = three_tier(device_s=0.1, edge_s=0.05, blocks_out=(1000, 1000))
    s = spec(arrivals={"kind": "poisson", "rate_per_s": 4.0}, stop={"requests": 2000}, service="exponential",
             policies=[{"kind": "static", "configuration": "device:0-0,edge:1-1"}])
    a, _ = simulate(world, s, seed=7)
    b, _ = simulate(world, s, seed=7)
    c, _ = simulate(world, s, seed=8)
    assert a.rec == b.rec
    assert a.rec != c.rec


def test_arrivals_beyond_capacity_stop_the_run_as_unstable():
    world = three_tier(device_s=0.1)
    s = spec(arrivals={"kind": "poisson", "rate_per_s": 20.0}, stop={"requests": 10_000_000}, max_in_flight=500)
    sim, raw = simulate(world, s)
    assert sim.unstable_reason is not None and "in flight" in sim.unstable_reason
    assert sim.arrived < 2000  # bounded: it stopped soon after the backlog passed 500
    assert max(raw["rho"].values()) == pytest.approx(2.0)


def test_a_duration_run_with_overload_is_reported_unstable_by_offered_load():
    from testbed.sim.runner import run_one

    world = three_tier(device_s=0.1)
    s = spec(arrivals={"kind": "fixed", "rate_per_s": 12.0}, stop={"duration_s": 5})
    result = run_one(world, s, s.policies[0], seed=1)
    assert result.summary["stable"] is False
    assert "offered load 1.20" in result.summary["unstable_reason"]


def test_closed_loop_keeps_concurrency_requests_outstanding():
    world = three_tier(device_s=1.0)
    s = spec(arrivals={"kind": "closed", "concurrency": 2}, stop={"requests": 6})
    sim, _ = simulate(world, s)
    # two at a time on one core: each pair takes 2 s together
    assert timeline(sim) == [(1, 0.0, 2.0), (2, 0.0, 2.0), (3, 2.0, 4.0), (4, 2.0, 4.0), (5, 4.0, 6.0), (6, 4.0, 6.0)]


def test_fixed_rate_arrivals_are_evenly_spaced():
    world = three_tier(device_s=0.01)
    s = spec(arrivals={"kind": "fixed", "rate_per_s": 10.0}, stop={"requests": 5})
    sim, _ = simulate(world, s)
    arrivals = [r[3] for r in sim.rec]
    gaps = [round(b - a, 9) for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert gaps == [0.1] * 4


def test_jitter_spreads_propagation_around_half_the_rtt(tmp_path):
    world = three_tier(device_s=0.0, bw_mbps=1000.0, rtt_ms=100.0, input_bytes=1, jitter_ms=20.0)
    s = trace_spec(tmp_path, [float(i) for i in range(200)], {"kind": "edge-only"})
    sim, _ = simulate(world, s)
    lat = [r[5] for r in sim.rec]
    assert min(lat) >= 0.05 - 0.01 and max(lat) <= 0.05 + 0.01 + 1e-6
    assert max(lat) - min(lat) > 0.01


def test_loss_caps_a_flow_at_the_mathis_rate(tmp_path):
    from testbed.sim.world import mathis_cap_bytes_per_s

    world = three_tier(device_s=0.0, bw_mbps=1000.0, rtt_ms=20.0, input_bytes=1_000_000, loss_pct=1.0)
    sim, _ = simulate(world, trace_spec(tmp_path, [0.0], {"kind": "edge-only"}))
    cap = mathis_cap_bytes_per_s(20.0, 1.0)
    assert sim.rec[0][5] == pytest.approx(0.01 + 1_000_000 / cap, rel=1e-9)


def test_warmup_requests_are_left_out_of_the_statistics(tmp_path):
    world = three_tier(device_s=0.1)
    s = trace_spec(tmp_path, [0.0, 1.0, 2.0, 3.0], {"kind": "device-only"}, warmup_s=1.5)
    sim, raw = simulate(world, s)
    assert sim.finished == 4 and raw["histogram"].n == 2


def test_simulation_file_paths_resolve_against_the_file(tmp_path):
    s = simulation_from_dict(
        {"topology": "t.yaml", "profiles": "p", "resources": {}, "model": "M", "arrivals": {"kind": "closed"},
         "stop": {"requests": 1}, "policies": [{"kind": "oracle"}]}, tmp_path)
    assert s.topology == tmp_path / "t.yaml" and s.model == "m"


def test_with_reply_the_answer_travels_back_to_the_device(tmp_path):
    # edge-only with reply: input up (0.05 + 0.1 s), edge 0.2 s, 1,000-byte answer down (0.001 + 0.05 s).
    world = three_tier(device_s=1.0, edge_s=0.2, bw_mbps=8.0, rtt_ms=100.0, input_bytes=100_000)
    sim, _ = simulate(world, trace_spec(tmp_path, [0.0], {"kind": "edge-only"}, reply=True))
    assert sim.rec[0][5] == pytest.approx(0.15 + 0.2 + 0.051, rel=1e-12)
    assert sim.rec[0][6:9] == pytest.approx((0.2, 0.101, 0.1))
