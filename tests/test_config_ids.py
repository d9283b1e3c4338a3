"""One configuration id format (issue 12, point 2): layer ranges by default, block ranges under 'blocks:'.

Round trips over random block partitions, the errors a wrong id gets, old unprefixed block ids read from
old run folders, and the flow a user follows: paste `scission predict`'s answer into a simulation file.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml
from conftest import LEGACY_DIR, REPO, console_script
from hypothesis import given, settings
from hypothesis import strategies as st

from scission.problem import (
    BlockLayers,
    block_config_id,
    block_ranges,
    config_id,
    parse_config_id,
)
from scission.profile_folder import load_profiles


@st.composite
def partitions(draw):
    """A model (blocks of 1-4 layers each, starting at layer 0 or 1), ordered tiers and block counts per tier."""
    widths = draw(st.lists(st.integers(1, 4), min_size=1, max_size=40))
    start = draw(st.integers(0, 1))
    firsts, lasts = [], []
    for w in widths:
        firsts.append(start)
        lasts.append(start + w - 1)
        start += w
    layers = BlockLayers(tuple(firsts), tuple(lasts))
    tiers = tuple(draw(st.lists(st.sampled_from(["device", "gateway", "edge", "cloud", "fog", "t2"]),
                                min_size=1, max_size=5, unique=True)))
    cuts = sorted(draw(st.lists(st.integers(0, len(widths)), min_size=len(tiers) - 1, max_size=len(tiers) - 1)))
    bounds = [0, *cuts, len(widths)]
    counts = tuple(bounds[i + 1] - bounds[i] for i in range(len(tiers)))
    return layers, tiers, counts


@settings(max_examples=300, deadline=None)
@given(partitions())
def test_ids_round_trip_in_both_forms(case):
    layers, tiers, counts = case
    canonical = config_id(tiers, counts, layers)
    blocks = block_config_id(tiers, counts)
    assert blocks.startswith("blocks:")
    assert parse_config_id(canonical, tiers, layers) == counts
    assert parse_config_id(blocks, tiers, layers) == counts
    # files written before issue 12 hold unprefixed block ranges; read as such only when asked
    assert parse_config_id(block_ranges(tiers, counts), tiers, layers, unprefixed="blocks") == counts
    # the canonical id names layers: every range starts and ends where a block does
    for part in filter(None, canonical.split(",")):
        lo, hi = map(int, part.split(":")[1].split("-"))
        assert lo in layers.first_layers and hi in layers.last_layers


LEGACY = load_profiles(LEGACY_DIR)
MOBILENETV2 = BlockLayers.of(next(p for p in LEGACY if p.resource.label == "device-raspi4").models["mobilenetv2"].blocks)
TIERS = ("device", "edge", "cloud")


def test_an_id_that_does_not_fit_names_the_models_layer_and_block_ranges():
    with pytest.raises(ValueError) as err:  # the finding: predict's ranges refused as blocks 0-15 vs 0-4
        parse_config_id("device:0-9,edge:10-15", TIERS, MOBILENETV2)
    message = str(err.value)
    assert "layers 0-156 in blocks 0-65" in message and "blocks:" in message
    with pytest.raises(ValueError, match="as block ranges it fits: write 'blocks:device:0-3,edge:4-40,cloud:41-65'"):
        parse_config_id("device:0-3,edge:4-40,cloud:41-65", TIERS, MOBILENETV2)
    with pytest.raises(ValueError, match="covers blocks 0-9 but the model has blocks 0-65"):
        parse_config_id("blocks:device:0-9", TIERS, MOBILENETV2)


def test_predict_lines_paste_as_ids():
    line = "[1] 0.9734s - 0.7849MB - Device(raspi4) = -1 - -1, Edge(2500) = 0 - 4, Cloud(6700k(GPU)) = 5 - 156"
    counts = parse_config_id(line, TIERS, MOBILENETV2)
    assert config_id(TIERS, counts, MOBILENETV2) == "edge:0-4,cloud:5-156"
    assert parse_config_id("edge-only", TIERS, MOBILENETV2) == (0, 66, 0)


def _run(name, *args, cwd=REPO):
    return subprocess.run([console_script(name), *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def _sim_file(tmp_path, profiles, configuration, model="mobilenetv2"):
    doc = {
        "name": "pasted", "topology": str(REPO / "topologies" / "three-tier-wired.yaml"), "profiles": str(profiles),
        "resources": {"device": "device-raspi4", "edge": "edge-2500", "cloud": "cloud-6700k(GPU)"},
        "model": model, "service": "deterministic", "arrivals": {"kind": "poisson", "rate_per_s": 0.2},
        "stop": {"requests": 30}, "seeds": [1],
        "policies": [{"kind": "static", "configuration": configuration, "name": "pasted"}],
    }
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _paste_flow(tmp_path, profiles):
    """predict's top answers, pasted both ways (the JSON config_id and the text line), simulate as themselves."""
    net = str(LEGACY_DIR / "network_stats_wired.csv")
    answers = json.loads(_run("scission", "predict", str(profiles), net, "mobilenetv2", "--json",
                              "-e", "name:2500", "-c", "name:6700k(GPU)", "-rc", "2").stdout)
    lines = _run("scission", "predict", str(profiles), net, "mobilenetv2",
                 "-e", "name:2500", "-c", "name:6700k(GPU)", "-rc", "2").stdout.splitlines()
    assert answers and len(lines) == len(answers)
    for answer, line in zip(answers, lines, strict=True):
        assert re.fullmatch(r"(device|edge|cloud):\d+-\d+(,(device|edge|cloud):\d+-\d+)*", answer["config_id"])
        assert answer["block_config_id"].startswith("blocks:")
        for pasted in (answer["config_id"], line.split("MB - ", 1)[1], answer["block_config_id"]):
            out = _run("testbed", "simulate", str(_sim_file(tmp_path, profiles, pasted)), "--json")
            assert out.returncode == 0, (pasted, out.stderr)
            assert json.loads(out.stdout)["policies"]["pasted"]["final_config"] == f"device={answer['config_id']}"


def test_predicts_answer_pasted_into_a_simulation_file_runs_on_the_legacy_data(tmp_path):
    _paste_flow(tmp_path, LEGACY_DIR)


def test_predicts_answer_pasted_into_a_simulation_file_runs_on_benchmarked_profiles(tmp_path):
    from scission.profiles import write_profile

    folder = tmp_path / "profiles"
    for p in LEGACY:  # the same measurements in this project's *.scission format
        write_profile(folder, p)
    assert sorted(x.suffix for x in folder.iterdir()) == [".scission"] * len(LEGACY)
    _paste_flow(tmp_path, folder)


def test_the_simulation_table_shows_each_policys_final_configuration_and_switches(tmp_path):
    sim = _sim_file(tmp_path, LEGACY_DIR, "device:0-4,edge:5-95,cloud:96-156")
    out = _run("testbed", "simulate", str(sim))
    assert out.returncode == 0, out.stderr
    assert "switches" in out.stdout and "final configuration" in out.stdout
    assert "device:0-4,edge:5-95,cloud:96-156" in out.stdout.replace("\n", "").replace("│", "").replace(" ", "")


def test_an_experiment_fault_may_name_its_configuration_by_id():
    from testbed.run.runner import Segment, plan_segments
    from testbed.run.spec import FaultSpec

    ids = ("device:0-1,edge:2-5", "blocks:device:0-0,edge:1-2")
    for named in (*ids, "device:0-1, edge:2-5"):
        fault = FaultSpec(config=named, after_requests=1, action="stop-node", node="edge")
        assert plan_segments(0, 3, [fault], 2, "top-2", set(), ids) == [Segment(0, 1), Segment(1, 3, (0,))]
    other = FaultSpec(config="device:0-5", after_requests=1, action="stop-node", node="edge")
    assert plan_segments(0, 3, [other], 2, "top-2", set(), ids) == [Segment(0, 3)]



@settings(max_examples=300, deadline=None)
@given(partitions())
def test_an_old_unprefixed_block_id_is_never_silently_read_as_other_layers(case):
    """Block ranges written before issue 12 (no prefix) either mean the same split read as layers or are
    refused: a profile's blocks are contiguous, so an id covering layers 0..last and blocks 0..n-1 with
    the same numbers needs one layer per block, where both readings agree."""
    layers, tiers, counts = case
    old = block_ranges(tiers, counts)
    try:
        read = parse_config_id(old, tiers, layers)
    except ValueError as exc:
        assert "blocks:" in str(exc)  # the message says how to write block ranges
        return
    assert read == counts
