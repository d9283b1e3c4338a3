"""Any number of ordered tiers: a four-tier world (device -> gateway -> edge -> cloud), end to end."""

from __future__ import annotations

import json

import pytest
from conftest import REPO
from test_sim_cli import assert_one_line_exit_2, run_testbed
from test_sim_helpers import profile, simulate, spec, topology

from scission.problem import BlockLayers
from testbed.errors import ConfigurationError
from testbed.sim.spec import load_simulation
from testbed.sim.world import Split, World

FOUR = ("device", "gateway", "edge", "cloud")
EXPERIMENT = REPO / "experiments" / "sim-four-tier.yaml"
RESOURCES = {"device": "device-d", "gateway": "gateway-g", "edge": "edge-e", "cloud": "cloud-c"}


def four_tier(blocks_out=(4000, 2000, 1000, 500), times_s=(0.4, 0.2, 0.1, 0.05)) -> World:
    """A device-gateway-edge-cloud chain; tier i runs each block in times_s[i] / len(blocks_out) seconds."""
    topo = topology([(t, t, 1.0) for t in FOUR],
                    [("device", "gateway", 8.0, 10.0), ("gateway", "edge", 20.0, 20.0), ("edge", "cloud", 50.0, 40.0)],
                    tiers=FOUR)
    n = len(blocks_out)
    profiles = [profile(RESOURCES[t], [(s / n, b) for b in blocks_out]) for t, s in zip(FOUR, times_s, strict=True)]
    return World(topo, profiles, RESOURCES, "m", input_bytes=50_000)


def test_a_world_takes_the_topologys_tiers_and_one_node_per_tier():
    world = four_tier()
    assert world.tiers == FOUR
    assert world.paths["device"].nodes == FOUR


@pytest.mark.parametrize("text, counts", [
    ("device:0-3,gateway:4-9,edge:10-20,cloud:21-25", (4, 6, 11, 5)),
    ("gateway:0-25", (0, 26, 0, 0)),
    ("gateway-only", (0, 26, 0, 0)),
    ("device:0-0,cloud:1-25", (1, 0, 0, 25)),
])
def test_four_tier_split_ids_parse_and_print_back(text, counts):
    split = Split.parse(text, FOUR, BlockLayers.one_per_block(26))
    assert split.counts == counts and split.tiers == FOUR
    assert Split.parse(split.id, FOUR, BlockLayers.one_per_block(26)) == split
    assert split.id == ("gateway:0-25" if text == "gateway-only" else text.replace(" ", ""))


def test_world_split_builds_from_counts_and_refuses_wrong_lengths():
    world = four_tier()
    assert world.split((1, 1, 1, 1)).id == "device:0-0,gateway:1-1,edge:2-2,cloud:3-3"
    with pytest.raises(ConfigurationError, match="one block count per tier"):
        Split(FOUR, (4, 0, 0))
    with pytest.raises(ConfigurationError, match="add up to 4"):
        world.split((1, 1, 1, 2))


def test_unknown_tiers_are_refused_with_the_topologys_names():
    world = four_tier()
    with pytest.raises(ConfigurationError, match="unknown configuration 'fog:0-3': tier 'fog' is not one of "
                                                 "device, gateway, edge, cloud"):
        world.parse_split("fog:0-3")
    with pytest.raises(ConfigurationError, match="native kinds here: device-only, gateway-only, edge-only, cloud-only"):
        world.native_split("fog-only")


def test_zero_load_simulated_latency_equals_scissions_cost_on_four_tiers(tmp_path):
    # One request at a time: each of scission's configurations, simulated, costs what scission says.
    world = four_tier()
    configs = world.best("device", {}, {}, 64)
    assert any(all(c > 0 for c in config.block_counts) for config in configs)  # splits over all four tiers
    path = tmp_path / "a.csv"
    path.write_text("time_s\n0\n")
    for config in configs:
        s = spec(resources=RESOURCES, arrivals={"kind": "trace", "path": str(path)}, stop={"duration_s": 100},
                 policies=[{"kind": "static", "configuration": config.id}])
        sim, _ = simulate(world, s)
        assert sim.rec[0].config == config.id
        assert sim.rec[0].latency_s == pytest.approx(config.latency_s, rel=1e-12), config.id


@pytest.mark.parametrize("kind", ["device-only", "gateway-only", "edge-only", "cloud-only"])
def test_every_native_of_four_tiers_runs_all_blocks_on_its_tier(kind):
    world = four_tier()
    s = spec(resources=RESOURCES, arrivals={"kind": "fixed", "rate_per_s": 0.5}, stop={"requests": 3},
             policies=[{"kind": kind}])
    sim, _ = simulate(world, s)
    assert sim.finished == 3
    assert {r.config for r in sim.rec} == {f"{kind.removesuffix('-only')}:0-3"}


def test_the_four_tier_experiment_runs_every_policy_kind():
    spec_ = load_simulation(EXPERIMENT)
    kinds = {p.kind for p in spec_.policies}
    assert kinds >= {"static", "oracle", "periodic", "adaptive", "device-only", "gateway-only", "edge-only", "cloud-only"}
    out = run_testbed("simulate", str(EXPERIMENT), "--json", "--seeds", "1")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["topology"] == "four-tier" and summary["stable"]
    policies = summary["policies"]
    assert set(policies) == {p.name for p in spec_.policies}
    assert policies["oracle"]["repartitions"] >= 1  # the Wi-Fi drop moves the best split
    assert all(e["mean_s"] > 0 for e in policies.values())


def test_a_native_kind_for_a_tier_the_topology_lacks_is_one_line(tmp_path):
    doc = EXPERIMENT.read_text().replace("{kind: gateway-only}", "{kind: fog-only}")
    doc = doc.replace("../topologies/", f"{REPO}/topologies/").replace("../tests/", f"{REPO}/tests/")
    path = tmp_path / "sim.yaml"
    path.write_text(doc)
    assert_one_line_exit_2(run_testbed("simulate", str(path)), "policies[3].kind", "'fog-only'", "gateway-only")
