"""What a run measures: scission's top k plus `<tier>-only` for every tier with a node, for any tiers (pure)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO
from run_fakes import BLOCK_S, MODEL, profile_files

from scission.network import NetworkLink, NetworkTable
from scission.profile_folder import load_profiles
from testbed.errors import RunFailed
from testbed.run.predict import choose_device, predict


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


def test_a_chain_of_four_tiers_leaves_out_the_natives_the_device_has_no_link_to(tmp_path):
    tiers = ("device", "gateway", "edge", "cloud")
    prediction = predict(_profiles(tmp_path, tiers), _chain(tiers), MODEL, "device", tiers, top_k=1, native=True)
    assert prediction.unreachable == ("edge-only", "cloud-only")
    for c in prediction.chosen:  # every configuration follows the chain: no tier is skipped on the data path
        running = [i for i, p in enumerate(c.config.placements) if p.runs or i == 0]
        assert running == list(range(len(running))), c.id


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
