"""What a run measures: scission's top k plus `<tier>-only` for every tier with a node, for any tiers (pure);
the network rows of pairs without a link, composed along the simulator's routes."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest
from conftest import REPO
from run_fakes import BLOCK_S, INPUT_BYTES, MODEL, profile_files

from emulator.probe import ProbeResult
from emulator.topology import LinkSpec, NodeSpec, TopologySpec
from scission.network import NetworkLink, NetworkTable, Routes
from scission.profile_folder import load_profiles
from scission.units import mbps_to_bytes_per_s
from testbed.errors import RunFailed
from testbed.run.predict import choose_device, network_from_probes, predict


def _profiles(tmp_path, tiers):
    for tier in tiers:
        for rel, data in profile_files(tier, tier).items():
            path = tmp_path / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    return load_profiles(tmp_path)


def _chain(tiers, extra=()):
    pairs = list(zip(tiers, tiers[1:], strict=False)) + list(extra)
    return NetworkTable([NetworkLink(a, b, 10.0, 20.0) for x, y in pairs for a, b in ((x, y), (y, x))])


@pytest.mark.parametrize("tiers", [("device", "edge", "cloud"), ("device", "gateway", "edge", "cloud")])
def test_natives_cover_every_tier_the_device_can_reach(tmp_path, tiers):
    profiles = _profiles(tmp_path, tiers)
    full = _chain(tiers, [(tiers[0], t) for t in tiers[2:]])  # the device reaches every tier
    prediction = predict(profiles, full, MODEL, "device", tiers, top_k=2, native=True)
    labels = [c.label for c in prediction.chosen]
    assert labels[:2] == ["top-1", "top-2"]
    natives = {c.label: c.id for c in prediction.chosen[2:]}
    n = len(BLOCK_S["device"])
    ids = [c.id for c in prediction.chosen]
    assert len(set(ids)) == len(ids)  # each configuration once, a native that is also a top-k keeps that label
    for tier in tiers:
        assert natives.get(f"{tier}-only", f"{tier}:0-{n - 1}") == f"{tier}:0-{n - 1}"
        assert f"{tier}:0-{n - 1}" in ids
    assert prediction.unreachable == ()
    assert all(len(c.config.placements) == len(tiers) for c in prediction.chosen)


def _probes(links):
    """Both directions of each (a, b, rtt_ms, mbps) link, measured at its figures, in the links' order."""
    return [ProbeResult(x, y, mbps, rtt_ms, mbps, rtt_ms, "fake")
            for a, b, rtt_ms, mbps in links for x, y in ((a, b), (b, a))]


CHAIN = [("device", "gateway", 4.0, 20.0), ("gateway", "edge", 10.0, 50.0), ("edge", "cloud", 20.0, 100.0)]


def test_pairs_without_a_link_are_composed_along_the_route_and_links_keep_their_rows():
    network = network_from_probes(_probes(CHAIN))
    names = ("device", "gateway", "edge", "cloud")
    assert len(network) == 12  # every ordered pair of the chain
    for a, b, rtt_ms, mbps in CHAIN:  # a link's row is its probe, as it is
        assert network.link(a, b) == NetworkLink(a, b, rtt_ms, mbps) == replace(network.link(b, a), source=a,
                                                                              destination=b)
    assert network.link("device", "edge").rtt_ms == pytest.approx(14.0)
    assert network.link("device", "edge").bandwidth_mbps == pytest.approx(1 / (1 / 20 + 1 / 50))
    cloud = network.link("cloud", "device")
    assert cloud.rtt_ms == pytest.approx(34.0) and cloud.bandwidth_mbps == pytest.approx(1 / (1 / 20 + 1 / 50 + 1 / 100))
    # scission charges the composed pair as the sum of its links, each a hop (store and forward)
    size = 60_000
    assert cloud.transfer_s(size) == pytest.approx(sum(NetworkLink(a, b, r, m).transfer_s(size) for a, b, r, m in CHAIN))
    assert {(lk.source, lk.destination) for lk in network} == {(a, b) for a in names for b in names if a != b}


def test_an_unmeasured_direction_leaves_out_the_pairs_routed_over_it():
    probes = _probes(CHAIN)
    probes[2] = replace(probes[2], measured_mbps=None, measured_rtt_ms=None, error="node edge is stopped")
    network = network_from_probes(probes)  # gateway -> edge is unmeasured
    assert ("gateway", "edge") not in network and ("device", "cloud") not in network and ("device", "edge") not in network
    assert ("edge", "device") in network and ("cloud", "device") in network


def test_routes_are_the_simulators_fewest_hops_routes_with_its_tie_break(tmp_path):
    from testbed.sim.world import World  # test only: the run side never imports the simulator

    profiles = _profiles(tmp_path, ("device",))
    # a square: device reaches cloud through a or b in two hops; the links' order breaks the tie
    square = [("device", "a"), ("device", "b"), ("a", "cloud"), ("b", "cloud"), ("cloud", "far")]
    for links in (square, square[::-1], [square[1], square[0], *square[2:]]):
        topology = TopologySpec("t", tuple(NodeSpec(n, "device" if n == "device" else "edge", 1.0, 1 << 28)
                                           for n in ("device", "a", "b", "cloud", "far")),
                                tuple(LinkSpec(a, b, 10.0, 1.0) for a, b in links))
        world = World(topology, profiles, {"device": "device-device"}, MODEL)
        routes = Routes(links)
        for x in ("device", "a", "b", "cloud", "far"):
            for y in ("device", "a", "b", "cloud", "far"):
                if x != y:
                    hops = world.route(x, y)
                    assert routes.path(x, y) == (x, *(h[1] for h in hops)), (links, x, y)
    assert Routes([("a", "b"), ("c", "d")]).path("a", "d") is None


def test_a_chain_of_four_tiers_measures_every_native_through_the_relays(tmp_path):
    tiers = ("device", "gateway", "edge", "cloud")
    network = network_from_probes(_probes(CHAIN))
    prediction = predict(_profiles(tmp_path, tiers), network, MODEL, "device", tiers, top_k=1, native=True)
    assert prediction.unreachable == ()
    n = len(BLOCK_S["device"])
    natives = {c.label: c for c in prediction.chosen if c.label.endswith("-only")}
    ids = {c.id for c in prediction.chosen}
    for tier in tiers:
        assert f"{tier}:0-{n - 1}" in ids
    # cloud-only by hand: the device sends the input over device -> gateway -> edge -> cloud, the cloud runs
    # every block (median block times of the profile), as scission charges it (the full RTT of each link)
    cloud = next(c.config for c in prediction.chosen if c.id == f"cloud:0-{n - 1}")
    transfer_s = sum(rtt_ms / 1000 + INPUT_BYTES / mbps_to_bytes_per_s(mbps) for _, _, rtt_ms, mbps in CHAIN)
    assert cloud.latency_s == pytest.approx(sum(BLOCK_S["cloud"]) + transfer_s)
    assert "cloud-only" not in natives or natives["cloud-only"].config.latency_s == cloud.latency_s


def test_a_disconnected_topology_leaves_out_the_natives_the_device_cannot_reach(tmp_path):
    tiers = ("device", "gateway", "edge", "cloud")
    network = network_from_probes(_probes([CHAIN[0], CHAIN[2]]))  # no gateway - edge link
    prediction = predict(_profiles(tmp_path, tiers), network, MODEL, "device", tiers, top_k=1, native=True)
    assert prediction.unreachable == ("edge-only", "cloud-only")
    for c in prediction.chosen:  # only the device and the gateway compute
        assert all(not p.runs for p in c.config.placements[2:]), c.id


def test_only_the_chosen_device_stands_for_the_first_tier(tmp_path):
    tiers = ("device", "edge", "cloud")
    profiles = _profiles(tmp_path, tiers)
    network = _chain(tiers, [("device", "cloud")])
    prediction = predict(profiles, network, MODEL, "device", tiers, top_k=1, native=False)
    assert [c.label for c in prediction.chosen] == ["top-1"]
    assert prediction.chosen[0].config.placements[0].resource == "device"


def test_a_model_without_profiles_fails_the_run_in_one_line(tmp_path):
    tiers = ("device", "edge", "cloud")
    with pytest.raises(RunFailed, match="predicting resnet50"):
        predict(_profiles(tmp_path, tiers), _chain(tiers), "resnet50", "device", tiers, top_k=1, native=True)


def test_the_device_is_the_wanted_one_or_the_first():
    assert choose_device(["d1", "d2"], "t", None) == "d1"
    assert choose_device(["d1", "d2"], "t", "d2") == "d2"
    with pytest.raises(RunFailed, match="'x' is not a device node of t"):
        choose_device(["d1"], "t", "x")


def test_predict_imports_no_emulator_or_heavy_library():
    code = ("import sys, testbed.run.predict; "
            "print([m for m in ('emulator', 'docker', 'tensorflow', 'matplotlib', 'testbed.sim') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
