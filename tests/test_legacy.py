"""Legacy .dat files load as profiles, and hostile or foreign pickles are refused without running."""

from __future__ import annotations

import os
import pickle
import pickletools

import pytest

from scission.errors import LegacyFormatError
from scission.legacy import read_legacy_dat
from scission.profile_folder import load_profiles
from scission.profiles import Resource


def test_reads_all_legacy_files(legacy_dir):
    profiles = {p.resource: p for p in load_profiles(legacy_dir)}
    assert set(profiles) == {
        Resource("device", "raspi4"),
        Resource("edge", "2500"),
        Resource("edge", "vm2Core"),
        Resource("cloud", "6700k(GPU)"),
        Resource("cloud", "6700k(NoGPU)"),
    }
    vgg19 = profiles[Resource("device", "raspi4")].models["vgg19"]
    assert len(vgg19.blocks) == 25
    first = vgg19.blocks[0]
    assert (first.first_layer, first.last_layer, first.output_bytes) == (0, 1, 12845184)
    assert first.latency.mean_s == pytest.approx(0.07058942317962646)
    assert first.latency.median_s is None and first.latency.typical_s == first.latency.mean_s
    assert all(len(p.models) == 18 for p in profiles.values())


class _WritesFile:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_hostile_pickle_is_refused_and_not_executed(tmp_path):
    victim = tmp_path / "pwned.txt"
    hostile = tmp_path / "device-evil.dat"
    hostile.write_bytes(pickle.dumps({"vgg19": [_WritesFile(str(victim))]}, protocol=3))
    with pytest.raises(LegacyFormatError, match="refusing to load global .*open"):
        read_legacy_dat(hostile)
    assert not victim.exists()


def test_hostile_pickle_via_os_system_is_refused(tmp_path):
    victim = tmp_path / "pwned2.txt"

    class _System:
        def __reduce__(self):
            return (os.system, (f"touch {victim}",))

    hostile = tmp_path / "edge-evil.dat"
    hostile.write_bytes(pickle.dumps(_System(), protocol=2))
    with pytest.raises(LegacyFormatError):
        read_legacy_dat(hostile)
    assert not victim.exists()


def test_non_pickle_and_wrong_shape_are_clear_errors(tmp_path):
    junk = tmp_path / "cloud-junk.dat"
    junk.write_bytes(b"not a pickle at all")
    with pytest.raises(LegacyFormatError, match="not a legacy Scission benchmark file"):
        read_legacy_dat(junk)
    wrong = tmp_path / "cloud-wrong.dat"
    wrong.write_bytes(pickle.dumps([1, 2, 3], protocol=3))
    with pytest.raises(LegacyFormatError, match="expected a non-empty dict"):
        read_legacy_dat(wrong)
    bad_record = tmp_path / "cloud-bad.dat"
    bad_record.write_bytes(pickle.dumps({"m": [{"input_layer": 0}]}, protocol=3))
    with pytest.raises(LegacyFormatError, match="record 0 is a dict"):
        read_legacy_dat(bad_record)


def test_legacy_files_are_protocol_3_pickles_of_layerbenchmark(legacy_dir):
    data = (legacy_dir / "edge-2500.dat").read_bytes()
    ops = {op.name for op, _, _ in pickletools.genops(data)}
    assert "GLOBAL" in ops and "REDUCE" not in ops
