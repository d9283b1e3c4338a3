"""Builders for the simulator tests: tiny worlds from in-memory topologies and hand-made profiles."""

from __future__ import annotations

from emulator.topology import LinkSpec, NodeSpec, TopologySpec
from scission.problem import DEFAULT_TIERS
from scission.profiles import Block, LatencyStats, ModelProfile, Profile, Resource
from testbed.sim.driver import make_driver
from testbed.sim.engine import Simulation
from testbed.sim.spec import simulation_from_dict
from testbed.sim.world import World

GB = 1024**3
RESOURCES = {"device": "device-d", "edge": "edge-e", "cloud": "cloud-c"}


def profile(label: str, blocks: list[tuple[float, int]], model: str = "m", run: dict | None = None) -> Profile:
    """A profile of one model whose blocks take the given mean seconds and output the given bytes."""
    tier, name = label.split("-", 1)
    bs = tuple(
        Block(index=i, first_layer=i, last_layer=i, output_bytes=out, latency=LatencyStats(mean_s=lat))
        for i, (lat, out) in enumerate(blocks)
    )
    return Profile(Resource(tier, name), {model: ModelProfile(model, bs, input_bytes=None, run=run or {})})


def topology(nodes, links, name: str = "t", tiers: tuple[str, ...] = DEFAULT_TIERS) -> TopologySpec:
    """nodes: [(name, tier, cpus)], links: [(a, b, bandwidth_mbps, rtt_ms[, jitter_ms, loss_pct])]."""
    return TopologySpec(
        name,
        tuple(NodeSpec(n, tier, cpus, GB) for n, tier, cpus in nodes),
        tuple(LinkSpec(*lk) for lk in links),
        tiers,
    )


def three_tier(device_s=1.0, edge_s=0.0, cloud_s=0.0, bw_mbps=8.0, rtt_ms=100.0, cpus=(1.0, 1.0, 1.0),
               blocks_out=(1000,), input_bytes=100_000, jitter_ms=0.0, loss_pct=0.0):
    """A device-edge-cloud chain whose model is one block per entry of blocks_out (time split evenly)."""
    n = len(blocks_out)
    topo = topology(
        [("device", "device", cpus[0]), ("edge", "edge", cpus[1]), ("cloud", "cloud", cpus[2])],
        [("device", "edge", bw_mbps, rtt_ms, jitter_ms, loss_pct), ("edge", "cloud", bw_mbps, rtt_ms)],
    )
    profiles = [
        profile("device-d", [(device_s / n, b) for b in blocks_out]),
        profile("edge-e", [(edge_s / n, b) for b in blocks_out]),
        profile("cloud-c", [(cloud_s / n, b) for b in blocks_out]),
    ]
    return World(topo, profiles, RESOURCES, "m", input_bytes=input_bytes)


def spec(**fields):
    doc = {
        "topology": "unused.yaml",
        "profiles": "unused",
        "resources": RESOURCES,
        "model": "m",
        "arrivals": {"kind": "poisson", "rate_per_s": 1.0},
        "stop": {"requests": 10},
        "policies": [{"kind": "device-only"}],
        "service": "deterministic",
    }
    doc.update(fields)
    return simulation_from_dict(doc)


def simulate(world: World, sim_spec, seed: int = 1, until_s: float | None = None, policy: int = 0,
             traces=()) -> tuple[Simulation, dict]:
    sim = Simulation(world, sim_spec, make_driver(sim_spec.policies[policy], world), seed, traces, record=True)
    raw = sim.run(until_s=until_s)
    return sim, raw


def timeline(sim: Simulation) -> list[tuple[int, float, float]]:
    """(request, arrival_s, finish_s) in finishing order, rounded to the nanosecond."""
    return [(r[0], round(r[3], 9), round(r[4], 9)) for r in sim.rec]


def arrivals_csv(tmp_path, times, device=None):
    path = tmp_path / "arrivals.csv"
    if device is None:
        path.write_text("time_s\n" + "".join(f"{t}\n" for t in times))
    else:
        path.write_text("time_s,device\n" + "".join(f"{t},{device}\n" for t in times))
    return str(path)


def test_three_tier_helper_builds_a_world():
    world = three_tier()
    assert world.devices == ["device"]
    assert world.paths["device"].nodes == ("device", "edge", "cloud")
    assert world.block_count == 1
