"""`scission predict` as a user runs it: the console script, its output lines, its errors."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys

import pytest
from conftest import REPO, console_script


def run(*args, cwd=None):
    return subprocess.run([console_script("scission"), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def test_vgg19_with_criteria_matches_the_original(legacy_dir):
    result = run("predict", str(legacy_dir), "network_stats.csv", "vgg19", "-d", "!-1", "-e", "10", "-c", "16")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "[1] 9.0106s - 2.4087MB - Device(raspi4) = 0 - 6, Edge(vm2Core) = 7 - 11, Cloud(6700k(GPU)) = 12 - 25"
    assert lines[1] == "[2] 9.0594s - 2.4087MB - Device(raspi4) = 0 - 6, Edge(2500) = 7 - 11, Cloud(6700k(GPU)) = 12 - 25"
    assert len(lines) == 5


def test_mobilenet_device_only(legacy_dir):
    result = run("predict", str(legacy_dir), "network_stats.csv", "mobilenet")
    assert result.returncode == 0
    assert result.stdout.splitlines()[0] == (
        "[1] 0.3444s - 0.0000MB - Device(raspi4) = 0 - 92, Edge(None) = -1 - -1, Cloud(None) = -1 - -1"
    )


def test_network_csv_resolves_in_folder_then_cwd(legacy_dir, tmp_path):
    shutil.copy(legacy_dir / "network_stats_wired.csv", tmp_path / "mine.csv")
    result = run("predict", str(legacy_dir), "mine.csv", "resnet50", "--result-count", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2


def test_json_and_plot(legacy_dir, tmp_path):
    plot = tmp_path / "best.png"
    result = run("predict", str(legacy_dir), "network_stats.csv", "vgg19", "--json", "--plot", str(plot),
                 "--result-count", "3")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [d["rank"] for d in data] == [1, 2, 3]
    best = data[0]
    assert {"latency_s", "transfer_bytes", "tiers"} <= set(best)
    assert [t["tier"] for t in best["tiers"]] == ["device", "edge", "cloud"]
    assert {"resource", "first_layer", "last_layer", "compute_s", "sent_bytes"} <= set(best["tiers"][0])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_results_message(legacy_dir):
    result = run("predict", str(legacy_dir), "network_stats.csv", "vgg19", "-d", "-1", "-e", "-1", "-c", "-1")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "No results for the specified configuration"  # the original tool's line, first
    # then the culprits: each of the three -1 alone is satisfiable, all three together are not
    assert "dropping any one of them gives results" in lines[1]
    assert [line.strip() for line in lines[2:]] == ["--device -1 (the device runs no block)",
                                                    "--edge -1 (the edge runs no block)",
                                                    "--cloud -1 (the cloud runs no block)"]


def test_more_tiers_from_the_cli(tmp_path, legacy_dir):
    # The same machine files under a four-tier naming: device -> gateway -> edge -> cloud.
    for f in legacy_dir.glob("*.dat"):
        shutil.copy(f, tmp_path / f.name)
    shutil.copy(tmp_path / "edge-2500.dat", tmp_path / "gateway-2500.dat")
    (tmp_path / "edge-2500.dat").unlink()
    shutil.copy(legacy_dir / "network_stats.csv", tmp_path / "net.csv")
    with open(tmp_path / "net.csv", "a") as f:
        f.write("2500,vm2Core,5,100\n")
    result = run("predict", str(tmp_path), "net.csv", "vgg19", "--tiers", "device,gateway,edge,cloud",
                 "--criteria", "gateway=!-1", "--json")
    assert result.returncode == 0, result.stderr
    best = json.loads(result.stdout)[0]
    assert [t["tier"] for t in best["tiers"]] == ["device", "gateway", "edge", "cloud"]
    assert best["tiers"][1]["resource"] == "2500" and best["tiers"][1]["first_layer"] >= 0


def _bad_inputs(legacy_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    badcsv = tmp_path / "bad.csv"
    badcsv.write_text("source,destination,ping(ms),bandwidth(mbps)\nraspi4,2500, 66.7\n")
    partial = tmp_path / "partial.csv"
    partial.write_text("source,destination,ping(ms),bandwidth(mbps)\nraspi4,2500,66.7,1.6\n")
    hostile_dir = tmp_path / "hostile"
    hostile_dir.mkdir()
    (hostile_dir / "device-x.dat").write_bytes(pickle.dumps(print, protocol=3))
    d = str(legacy_dir)
    return {
        "missing folder": (["predict", str(tmp_path / "nope"), "n.csv", "vgg19"], "does not exist"),
        "missing csv": (["predict", d, "nope.csv", "vgg19"], "does not exist"),
        "no profiles": (["predict", str(empty), str(badcsv), "vgg19"], "no profiles in"),
        "unknown model": (["predict", d, "network_stats.csv", "alexnet"], "known models: densenet121"),
        "malformed row": (["predict", d, str(badcsv), "vgg19"], "line 2: expected 4 fields"),
        "missing pair": (["predict", d, str(partial), "vgg19"], "no row for raspi4 -> "),
        "bad criteria": (["predict", d, "network_stats.csv", "vgg19", "-d", "3,,4"], "empty item"),
        "negative layer": (["predict", d, "network_stats.csv", "vgg19", "-e", "-7"], "negative"),
        "hostile pickle": (["predict", str(hostile_dir), str(badcsv), "vgg19"], "refusing to load global"),
        "negative size": (["predict", d, "network_stats.csv", "vgg19", "-i", "-3"], "must not be negative"),
        "unknown unit": (["predict", d, "network_stats.csv", "vgg19", "--device-upload", "3 parsecs"], "unknown unit"),
        "bad time": (["predict", d, "network_stats.csv", "vgg19", "--edge-time", "fast"], "unknown unit"),
        "count": (["predict", d, "network_stats.csv", "vgg19", "--result-count", "0"], "at least 1"),
        "unknown flag": (["predict", d, "network_stats.csv", "vgg19", "--frobnicate"], "unrecognized arguments"),
        "empty name": (["predict", d, "network_stats.csv", "vgg19", "-e", "name:"], "'name:' needs a resource name"),
    }


@pytest.mark.parametrize(
    "case",
    ["missing folder", "missing csv", "no profiles", "unknown model", "malformed row", "missing pair",
     "bad criteria", "negative layer", "hostile pickle", "negative size", "unknown unit", "bad time", "count",
     "unknown flag", "empty name"],
)
def test_bad_input_is_one_line_and_exit_2(case, legacy_dir, tmp_path):
    args, message = _bad_inputs(legacy_dir, tmp_path)[case]
    result = run(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_predict_keeps_heavy_libraries_out_of_its_import_path(legacy_dir):
    code = (
        "import sys\n"
        "from scission.cli import main\n"
        f"main(['predict', {str(legacy_dir)!r}, 'network_stats.csv', 'vgg19'])\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'matplotlib', 'pandas', 'pyarrow', 'docker', 'simpy') "
        "if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


# ------------------------------------------------------------------ issue 12: input size, ids, empty answers


def _benchmarked(tmp_path, input_bytes):
    """The legacy measurements as a `scission benchmark` folder (*.scission) whose vgg19 stores an input size;
    input_bytes: resource label -> bytes (labels not listed store 49,152 bytes, the U-Net of the finding)."""
    from dataclasses import replace

    from scission.profile_folder import load_profiles
    from scission.profiles import write_profile

    folder = tmp_path / "bench"
    for p in load_profiles(REPO / "tests" / "data" / "legacy"):
        vgg = replace(p.models["vgg19"], input_bytes=input_bytes.get(p.resource.label, 49_152))
        write_profile(folder, replace(p, models={"vgg19": vgg}))
    shutil.copy(REPO / "tests" / "data" / "legacy" / "network_stats.csv", folder / "network_stats.csv")
    return folder


def _edge_only(folder, *extra):
    result = run("predict", str(folder), "network_stats.csv", "vgg19", "--json", "-rc", "1",
                 "-d", "-1", "-c", "-1", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)[0], result.stderr


def test_predict_on_benchmarked_profiles_charges_their_stored_input_size(tmp_path):
    best, stderr = _edge_only(_benchmarked(tmp_path, {}))
    assert best["input_bytes"] == 49_152.0 and best["input_source"] == "profile"
    assert best["tiers"][0]["sent_bytes"] == 49_152.0  # the device sends the stored input, not 0.15 MB
    assert stderr == ""
    override, _ = _edge_only(_benchmarked(tmp_path, {}), "-i", "0.15")
    assert override["input_bytes"] == 150_000.0 and override["input_source"] == "flag"
    assert override["latency_s"] > best["latency_s"]


def test_profiles_that_disagree_on_the_input_size_say_which_one_is_used(tmp_path):
    best, stderr = _edge_only(_benchmarked(tmp_path, {"edge-2500": 602_112}))
    assert best["input_bytes"] == 49_152.0  # the device's: it holds the input
    assert "disagree" in stderr and "edge-2500 602,112 bytes" in stderr and "using 49,152 bytes from device-raspi4" in stderr


def test_legacy_dat_files_keep_the_original_0_15_mb(legacy_dir):
    result = run("predict", str(legacy_dir), "network_stats.csv", "vgg19", "--json", "-rc", "1", "-d", "-1")
    best = json.loads(result.stdout)[0]
    assert best["input_bytes"] == 150_000.0 and best["input_source"] == "default"


def test_json_ids_and_one_type_per_field(legacy_dir):
    result = run("predict", str(legacy_dir), "network_stats.csv", "vgg19", "--json", "-rc", "5", "-d", "-1")
    data = json.loads(result.stdout)
    assert data[0]["config_id"] == "cloud:0-25" and data[0]["block_config_id"] == "blocks:cloud:0-24"
    types: dict[str, set] = {}
    for d in data:
        for key, value in d.items():
            types.setdefault(key, set()).add(type(value).__name__)
        for tier in d["tiers"]:
            for key, value in tier.items():
                if value is not None:
                    types.setdefault(f"tiers.{key}", set()).add(type(value).__name__)
    assert all(len(t) == 1 for t in types.values()), types
    assert types["tiers.compute_s"] == {"float"} and types["tiers.first_layer"] == {"int"}


def test_a_numeric_resource_name_is_reached_with_name_and_a_layer_past_the_end_warns(legacy_dir):
    as_layer = run("predict", str(legacy_dir), "network_stats.csv", "vgg19", "-e", "2500")
    assert as_layer.stdout.splitlines()[0] == "No results for the specified configuration"
    assert "--edge 2500 (layer 2500 on the edge)" in as_layer.stdout
    assert "layer 2500 is past vgg19's last layer 25; for the resource named 2500 write name:2500" in as_layer.stderr
    named = run("predict", str(legacy_dir), "network_stats.csv", "vgg19", "-e", "name:2500", "-rc", "3")
    assert named.returncode == 0 and named.stderr == ""
    assert all("Edge(2500) = " in line and "Edge(2500) = -1" not in line for line in named.stdout.splitlines())


def test_a_tier_without_profiles_warns(legacy_dir):
    result = run("predict", str(legacy_dir), "network_stats.csv", "vgg19", "--tiers", "device,fog,edge,cloud")
    assert result.returncode == 0
    assert "--tiers names fog, but no fog resource has a profile of vgg19" in result.stderr


def test_no_results_names_the_one_constraint_to_blame(legacy_dir):
    result = run("predict", str(legacy_dir), "network_stats.csv", "vgg19", "-d", "-1", "--device-upload", "0.01")
    lines = result.stdout.splitlines()
    assert lines[0] == "No results for the specified configuration"
    assert "--device -1" in result.stdout and "--device-upload 0.01" in result.stdout
    json_out = run("predict", str(legacy_dir), "network_stats.csv", "vgg19", "-d", "-1", "-e", "-1", "-c", "-1", "--json")
    assert json.loads(json_out.stdout) == []
    assert json_out.stderr.splitlines()[0] == "No results for the specified configuration"


def test_explaining_an_empty_answer_survives_a_network_that_only_the_constraints_made_enough(legacy_dir, tmp_path):
    net = tmp_path / "net.csv"  # only the device <-> edge 2500 rows: fine while the cloud is excluded
    net.write_text("source,destination,ping(ms),bandwidth(mbps)\nraspi4,2500,10,10\n2500,raspi4,10,10\n")
    result = run("predict", str(legacy_dir), str(net), "vgg19", "-e", "name:2500", "-c", "-1", "-d", "30")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "No results for the specified configuration"
    assert "--device 30 (layer 30 on the device)" in result.stdout
    assert "layer 30 is past vgg19's last layer 25" in result.stderr


def test_one_input_size_rule_for_predict_the_run_and_the_simulator(tmp_path):
    """model_input_size decides for all three: `testbed run` used 0 and the simulator its first device's size."""
    from dataclasses import replace

    from test_sim_helpers import RESOURCES, profile, topology

    from scission.partition import model_input_size
    from testbed.sim.world import World

    def sized(label, size):
        p = profile(label, [(0.1, 1000), (0.1, 500)])
        return replace(p, models={"m": replace(p.models["m"], input_bytes=size)})

    legacy = [profile(label, [(0.1, 1000), (0.1, 500)]) for label in RESOURCES.values()]
    assert model_input_size(legacy, "m", "device").size_bytes == 150_000.0
    agreeing = [sized(label, 4096) for label in RESOURCES.values()]
    assert model_input_size(agreeing, "m", "device") == model_input_size(agreeing, "m", "device", None)
    assert model_input_size(agreeing, "m", "device").size_bytes == 4096.0
    assert model_input_size(agreeing, "m", "device", 10.0).source == "flag"
    disagreeing = [sized("edge-e", 9999), sized("device-d", 4096), sized("cloud-c", 4096)]
    size = model_input_size(disagreeing, "m", "device")
    assert size.size_bytes == 4096.0 and "using 4,096 bytes from device-d" in size.note
    topo = topology([("device", "device", 1.0), ("edge", "edge", 1.0), ("cloud", "cloud", 1.0)],
                    [("device", "edge", 8.0, 10.0), ("edge", "cloud", 8.0, 10.0)])
    assert World(topo, disagreeing, RESOURCES, "m").input_bytes == 4096.0
    assert World(topo, legacy, RESOURCES, "m").input_bytes == 150_000.0
    assert World(topo, legacy, RESOURCES, "m", input_bytes=321).input_bytes == 321.0
