"""The profile format round-trips losslessly and mixes with legacy files in one folder."""

from __future__ import annotations

import json
import shutil

import pytest

from scission.errors import ProfileError
from scission.profile_folder import load_profiles
from scission.profiles import (
    Block,
    LatencyStats,
    ModelProfile,
    Profile,
    Resource,
    read_profile,
    write_model,
    write_profile,
)


def _model(name="tiny", samples=((0.010, 0.012, 0.011), (0.002, 0.0021, 0.0019))):
    blocks = (
        Block(0, 0, 3, 602_112, LatencyStats.from_samples(samples[0]), output_npy_bytes=602_240,
              layer_names=("input", "conv", "bn", "relu"), param_count=864, output_shape=(None, 112, 112, 12),
              output_dtype="float32"),
        Block(1, 4, 4, 4_000, LatencyStats.from_samples(samples[1]), output_npy_bytes=4_128,
              layer_names=("dense",), param_count=150_528_000, output_shape=(None, 1000), output_dtype="float32"),
    )
    return ModelProfile(name, blocks, input_bytes=602_112, input_shape=(1, 224, 224, 3),
                        run={"repeats": 3, "whole_model": {"median_s": 0.0125, "samples_s": [0.0125, 0.013]},
                             "block_sum_ratio": 1.04, "date": "2026-11-25T12:00:00Z"})


def test_round_trip_is_lossless(tmp_path):
    resource = Resource("edge", "box(1)")
    metadata = {"host": "h", "cpu_model": "x", "frameworks": {"tensorflow": "2.21.0"}, "cpu_limit": 1.5,
                "memory_limit_bytes": 2 << 30, "date": "2026-11-25"}
    profile = Profile(resource, {"tiny": _model(), "other": _model("other")}, metadata)
    folder = write_profile(tmp_path, profile)
    assert folder.name == "edge-box(1).scission"
    back = read_profile(folder)
    assert back.resource == resource
    assert back.metadata == metadata
    assert back.models == profile.models
    header = json.loads((folder / "profile.json").read_text())
    assert (header["format"], header["version"]) == ("scission-profile", 2)


def test_version_1_profiles_still_read_as_eager_without_call_overhead(tmp_path):
    folder = write_profile(tmp_path, Profile(Resource("edge", "old"), {"tiny": _model()}, {}))
    header = json.loads((folder / "profile.json").read_text())
    (folder / "profile.json").write_text(json.dumps({**header, "version": 1}))
    model = read_profile(folder).models["tiny"]
    assert (model.runtime, model.call_overhead_s) == ("eager", 0.0)


def test_stats_from_samples():
    stats = LatencyStats.from_samples([0.3, 0.1, 0.2, 0.4])
    assert stats.median_s == pytest.approx(0.25)
    assert stats.mean_s == pytest.approx(0.25)
    assert stats.p95_s == 0.4
    assert stats.count == 4
    assert stats.samples_s == (0.3, 0.1, 0.2, 0.4)


def test_folder_mixes_legacy_and_new_profiles(tmp_path, legacy_dir):
    for f in legacy_dir.glob("*.dat"):
        shutil.copy(f, tmp_path)
    write_model(tmp_path, Resource("edge", "new"), _model("vgg19"), {})
    profiles = {p.resource.label: p for p in load_profiles(tmp_path)}
    assert "edge-new" in profiles and "device-raspi4" in profiles
    assert profiles["edge-new"].models["vgg19"].blocks[1].latency.count == 3


def test_rewriting_a_model_replaces_only_that_model(tmp_path):
    resource = Resource("device", "pi")
    write_model(tmp_path, resource, _model("a"), {})
    write_model(tmp_path, resource, _model("b"), {})
    write_model(tmp_path, resource, _model("a", samples=((1.0,), (2.0,))), {})
    back = read_profile(tmp_path / "device-pi.scission")
    assert sorted(back.models) == ["a", "b"]
    assert back.models["a"].blocks[0].latency.samples_s == (1.0,)
    assert not list((tmp_path / "device-pi.scission").glob("*.tmp"))


def test_bad_folders_are_clear_errors(tmp_path):
    with pytest.raises(ProfileError, match="does not exist"):
        load_profiles(tmp_path / "missing")
    with pytest.raises(ProfileError, match="no profiles in"):
        load_profiles(tmp_path)
    broken = tmp_path / "device-x.scission"
    broken.mkdir()
    (broken / "profile.json").write_text('{"format": "scission-profile", "version": 99, "tier": "device", "name": "x"}')
    with pytest.raises(ProfileError, match="format version 99"):
        load_profiles(tmp_path)
    (broken / "profile.json").write_text('{"format": "scission-profile", "version": 1, "tier": "device", "name": "x"}')
    (broken / "m.parquet").write_bytes(b"garbage")
    with pytest.raises(ProfileError, match="cannot read profile table"):
        load_profiles(tmp_path)
