"""`scission predict` gives the original tool's answers on its own data, for every model and both networks."""

from __future__ import annotations

import itertools

import pytest
from legacy_reference import reference_predict

from scission.network import load_network_csv
from scission.partition import partition
from scission.problem import TierConstraints
from scission.profile_folder import load_profiles

MODELS = [
    "vgg16", "vgg19", "xception", "resnet50", "resnet101", "resnet152", "resnet50v2", "resnet101v2",
    "resnet152v2", "inception_v3", "inceptionresnet_v2", "mobilenet", "mobilenetv2", "densenet121",
    "densenet169", "densenet201", "nasnetlarge", "nasnetmobile",
]


def _in(tier, layer):
    return lambda s: s["ranges"][tier][0] <= layer <= s["ranges"][tier][1]


def _not_in(tier, layer):
    return lambda s: not (s["ranges"][tier][0] <= layer <= s["ranges"][tier][1])


def _named(tier, name):
    return lambda s: s["names"][tier] == name and s["ranges"][tier] != (-1, -1)


def _not_named(tier, name):
    return lambda s: s["names"][tier] != name and s["ranges"][tier] != (-1, -1)


# (constraints for scission, literal filters for the reference)
CASES = {
    "none": ({}, ()),
    "device runs": ({"device": TierConstraints(must_run=True)}, (_not_in("device", -1),)),
    "no edge": ({"edge": TierConstraints(must_run=False)}, (_in("edge", -1),)),
    "cloud not GPU": ({"cloud": TierConstraints(exclude_resources=("6700k(GPU)",))},
                      (_not_named("cloud", "6700k(GPU)"),)),
    "edge vm2Core, layer 3 on device": (
        {"edge": TierConstraints(include_resources=("vm2Core",)), "device": TierConstraints(include_layers=(3,))},
        (_named("edge", "vm2Core"), _in("device", 3)),
    ),
    "layer 5 not on cloud, edge upload 1MB": (
        {"cloud": TierConstraints(exclude_layers=(5,)), "edge": TierConstraints(upload_cap_bytes=1e6)},
        (_not_in("cloud", 5), lambda s: s["e_out"] <= 1e6),
    ),
    "device upload 0.1MB, device time 0.5s": (
        {"device": TierConstraints(upload_cap_bytes=1e5, time_cap_s=0.5)},
        (lambda s: s["d_out"] <= 1e5, lambda s: s["times"]["device"] <= 0.5),
    ),
    "device time 20%": (
        {"device": TierConstraints(time_cap_pct=20)},
        (lambda s: s["times"]["device"] / s["total_compute"] * 100 <= 20,),
    ),
}


@pytest.fixture(scope="module")
def profiles(legacy_dir=None):
    from conftest import LEGACY_DIR

    return load_profiles(LEGACY_DIR)


@pytest.mark.parametrize(("model", "network"), list(itertools.product(MODELS, ["network_stats.csv",
                                                                              "network_stats_wired.csv"])))
def test_matches_original_semantics(profiles, model, network):
    from conftest import LEGACY_DIR

    table = load_network_csv(LEGACY_DIR / network)
    for name, (constraints, filters) in CASES.items():
        expected = reference_predict(profiles, table, model, filters=filters)[:5]
        got = partition(profiles, table, model, k=5, constraints=constraints, legacy_zero_rule=True)
        exp_lines = [(f"{s['latency']:.4f}", f"{s['mb']:.4f}") for s in expected]
        got_lines = [(f"{c.latency_s:.4f}", f"{c.transfer_bytes / 1e6:.4f}") for c in got]
        assert got_lines == exp_lines, name
