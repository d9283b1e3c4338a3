"""Properties of the model on random small instances (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_sim_helpers import simulate, spec, three_tier

from testbed.sim.conditions import build_trace

CONFIGS = ["device-only", "edge-only", "cloud-only", "device:0-0,edge:1-1", "device:0-0,cloud:1-1", "edge:0-0,cloud:1-1"]

instances = st.fixed_dictionaries(
    {
        "device_s": st.floats(0.0, 0.5),
        "edge_s": st.floats(0.0, 0.3),
        "cloud_s": st.floats(0.0, 0.2),
        "bw_mbps": st.floats(0.5, 100.0),
        "rtt_ms": st.floats(0.0, 200.0),
        "cpus": st.tuples(st.floats(0.25, 4.0), st.floats(0.25, 4.0), st.floats(0.25, 4.0)),
        "rate": st.floats(0.1, 20.0),
        "config": st.sampled_from(CONFIGS),
        "service": st.sampled_from(["deterministic", "exponential", "lognormal"]),
        "until_s": st.floats(0.0, 30.0),
        "seed": st.integers(0, 2**32 - 1),
        "bw_step": st.floats(0.5, 50.0),
        "load_step": st.floats(0.0, 0.9),
    }
)


def _build(p):
    world = three_tier(device_s=p["device_s"], edge_s=p["edge_s"], cloud_s=p["cloud_s"], bw_mbps=p["bw_mbps"],
                       rtt_ms=p["rtt_ms"], cpus=p["cpus"], blocks_out=(5000, 2000), input_bytes=50_000)
    s = spec(arrivals={"kind": "poisson", "rate_per_s": p["rate"]}, stop={"duration_s": 20.0},
             service=p["service"], policies=[{"kind": "static", "configuration": p["config"]}],
             conditions=[{"kind": "step", "link": "device>edge", "bandwidth_mbps": [[0, p["bw_mbps"]], [5, p["bw_step"]]]},
                         {"kind": "step", "node": "edge", "load": [[0, 0.0], [7, p["load_step"]]]}],
             max_in_flight=100_000, drain_limit_s=10_000)
    return world, s


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances)
def test_requests_are_conserved_at_any_moment(p):
    world, s = _build(p)
    sim, _ = simulate(world, s, seed=p["seed"], until_s=p["until_s"], traces=[build_trace(c) for c in s.conditions])
    in_stations = sim.requests_in_stations()
    assert sim.arrived == sim.finished + sim.in_flight
    assert sim.in_flight == in_stations + sim.in_delay
    assert len(sim.rec) == sim.finished


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances)
def test_a_drained_run_finishes_every_request_no_sooner_than_its_zero_load_latency(p):
    world, s = _build(p)
    sim, _ = simulate(world, s, seed=p["seed"], traces=[build_trace(c) for c in s.conditions])
    assert sim.in_flight == 0 and sim.finished == sim.arrived
    if p["service"] == "deterministic":
        # Sharing and lower bandwidth only add time: nothing beats the best case of the split.
        best = min(world.predicted_s("device", sim.split["device"], {("device", "edge"): bw}, {"edge": 0.0})
                   for bw in (p["bw_mbps"], p["bw_step"]))
        assert min(r[5] for r in sim.rec) >= best * (1 - 1e-9) - 1e-9 if sim.rec else True


@pytest.mark.parametrize("config", CONFIGS)
def test_zero_load_simulated_latency_equals_the_cost_scission_is_given(config, tmp_path):
    # One request at a time: the simulator and the problem it hands scission agree exactly.
    world = three_tier(device_s=0.2, edge_s=0.1, cloud_s=0.05, bw_mbps=4.0, rtt_ms=30.0, blocks_out=(5000, 2000),
                       input_bytes=50_000)
    path = tmp_path / "a.csv"
    path.write_text("time_s\n0\n")
    s = spec(arrivals={"kind": "trace", "path": str(path)}, stop={"duration_s": 100},
             policies=[{"kind": "static", "configuration": config}])
    sim, _ = simulate(world, s)
    split = world.parse_split(config)
    assert sim.rec[0][5] == pytest.approx(world.predicted_s("device", split, {}, {}), rel=1e-12)


def _reference_ps(arrivals, work, capacity):
    """Processor sharing the slow, obvious way: advance every job's remaining work between events."""
    pending = sorted(arrivals)
    active: dict[int, float] = {}
    finish: dict[int, float] = {}
    t, nxt = 0.0, 0
    while nxt < len(pending) or active:
        rate = min(1.0, capacity / len(active)) if active else 0.0
        t_done = t + min(active.values()) / rate if active else float("inf")
        t_arr = pending[nxt] if nxt < len(pending) else float("inf")
        t_next = min(t_done, t_arr)
        for j in active:
            active[j] -= (t_next - t) * rate
        t = t_next
        for j in [j for j, rem in active.items() if rem <= 1e-12]:
            finish[j] = t
            del active[j]
        if t_arr <= t and nxt < len(pending):
            active[nxt] = work
            nxt += 1
    return [finish[i] for i in range(len(pending))]


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.floats(0.0, 2.0), min_size=1, max_size=25),
    work=st.floats(0.05, 2.0),
    cpus=st.sampled_from([1.0, 2.0, 3.0]),
)
def test_node_sharing_matches_a_brute_force_processor_sharing_reference(tmp_path_factory, gaps, work, cpus):
    arrivals = []
    t = 0.0
    for g in gaps:
        t += g
        arrivals.append(round(t, 6))
    path = tmp_path_factory.mktemp("ps") / "a.csv"
    path.write_text("time_s\n" + "".join(f"{a}\n" for a in arrivals))
    world = three_tier(device_s=work, cpus=(cpus, 1.0, 1.0))
    s = spec(arrivals={"kind": "trace", "path": str(path)}, stop={"duration_s": 1e6},
             policies=[{"kind": "device-only"}])
    sim, _ = simulate(world, s)
    got = sorted((r[0], r[4]) for r in sim.rec)
    expected = _reference_ps(arrivals, work, cpus)
    assert [f for _, f in got] == pytest.approx(expected, abs=1e-7)
