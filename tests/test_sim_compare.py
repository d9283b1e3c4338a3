"""`testbed compare` on small hand-made `testbed run` replay folders (the round trip is in test_run_roundtrip)."""

from __future__ import annotations

import json
import subprocess

import pandas as pd
import pytest
from conftest import REPO, console_script

from scission.profiles import Block, LatencyStats, ModelProfile, Resource, write_model
from testbed.compare import compare_run
from testbed.errors import RunFolderError

TOPOLOGY = """
name: tiny
nodes:
  - {name: device, tier: device, cpus: 1.0, memory: 512m}
  - {name: edge, tier: edge, cpus: 2.0, memory: 1g}
links:
  - {a: device, b: edge, bandwidth: 10mbit, rtt: 20ms}
"""

# block seconds on each resource (timed samples around them) and the bytes each block outputs
BLOCKS = {"device-pi": [0.10, 0.20, 0.30], "edge-box": [0.02, 0.04, 0.06]}
OUT_BYTES = [50_000, 20_000, 1_000]
INPUT_BYTES = 100_000


def make_run(tmp_path, measured_bw_mbps=8.0, measured_rtt_ms=30.0, offsets=None):
    run = tmp_path / "run"
    (run / "profiles").mkdir(parents=True)
    (run / "topology.yaml").write_text(TOPOLOGY)
    for label, times in BLOCKS.items():
        tier, name = label.split("-")
        blocks = tuple(
            Block(i, i, i, OUT_BYTES[i], LatencyStats.from_samples([t * 0.95, t, t * 1.05]))
            for i, t in enumerate(times)
        )
        write_model(run / "profiles", Resource(tier, name), ModelProfile("tiny", blocks, input_bytes=INPUT_BYTES), {})
    pd.DataFrame([
        {"a": "device", "b": "edge", "configured_mbps": 10.0, "configured_rtt_ms": 20.0,
         "measured_mbps": measured_bw_mbps, "measured_rtt_ms": measured_rtt_ms, "mechanism": "iperf"},
        {"a": "edge", "b": "device", "configured_mbps": 10.0, "configured_rtt_ms": 20.0,
         "measured_mbps": measured_bw_mbps, "measured_rtt_ms": measured_rtt_ms, "mechanism": "iperf"},
    ]).to_parquet(run / "probes.parquet")
    # Two configurations: all on the device; block 0 on the device, the rest on the edge.
    configs = pd.DataFrame([
        {"config": "c-device", "predicted_s": 0.6, "device_resource": "device-pi", "device_first_block": 0,
         "device_last_block": 2, "edge_resource": None, "edge_first_block": -1, "edge_last_block": -1,
         "cloud_resource": None, "cloud_first_block": -1, "cloud_last_block": -1},
        {"config": "c-split", "predicted_s": 0.2, "device_resource": "device-pi", "device_first_block": 0,
         "device_last_block": 0, "edge_resource": "edge-box", "edge_first_block": 1, "edge_last_block": 2,
         "cloud_resource": None, "cloud_first_block": -1, "cloud_last_block": -1},
    ])
    configs.to_parquet(run / "configs.parquet")
    # "Measured" latencies: M/G/1 processor-sharing means S / (1 - rho) per shared station at the run's
    # 0.2 requests/s (the edge has 2 cores: no queueing), under the probed link, times an offset per config.
    lam, one_way = 0.2, measured_rtt_ms / 2000
    transfer = 50_000 / (measured_bw_mbps * 125_000)

    def ps(s):
        return s / (1 - lam * s)

    reply = one_way + OUT_BYTES[-1] / (measured_bw_mbps * 125_000)  # the answer goes back to the device
    zero_load = {"c-device": ps(0.6), "c-split": ps(0.1) + one_way + ps(transfer) + 0.10 + reply}
    offsets = offsets or {"c-device": 1.0, "c-split": 1.0}
    rows = []
    for config, base in zero_load.items():
        for i in range(50):
            rows.append({"topology": "tiny", "model": "tiny", "config": config, "request": i,
                         "latency_s": base * offsets[config] * (1 + 0.02 * ((i % 5) - 2))})
    pd.DataFrame(rows).to_parquet(run / "requests.parquet")
    (run / "replay.json").write_text(json.dumps({
        "topology": "topology.yaml", "resources": {"device": "device-pi", "edge": "edge-box"}, "model": "tiny",
        "rate_per_s": 0.2,
    }))
    return run


def test_simulated_means_sit_beside_measured_and_predicted(tmp_path):
    table = compare_run(make_run(tmp_path), seeds=(1, 2))
    assert list(table["config"]) == ["c-device", "c-split"]
    assert list(table["split"]) == ["device:0-2", "device:0-0,edge:1-2"]
    assert table["predicted_s"].tolist() == [0.6, 0.2]
    assert table["within_15pct"].all()
    # the simulated means land within a few percent of the (queueing-aware) measured means
    assert (table["sim_error_pct"].abs() < 5).all()


def test_the_probed_link_is_used_not_the_configured_one(tmp_path):
    slow = compare_run(make_run(tmp_path, measured_bw_mbps=2.0), seeds=(1,))
    split = slow.set_index("config").loc["c-split"]
    assert split["simulated_s"] > 0.1 + 0.015 + 50_000 / (2.0 * 125_000)  # 0.2 s of transfer at 2 Mbit/s


def test_a_configuration_off_by_half_is_flagged(tmp_path):
    table = compare_run(make_run(tmp_path, offsets={"c-device": 1.5, "c-split": 1.0}), seeds=(1,))
    flags = dict(zip(table["config"], table["within_15pct"], strict=True))
    assert flags == {"c-device": False, "c-split": True}


def test_a_missing_file_is_named(tmp_path):
    run = make_run(tmp_path)
    (run / "probes.parquet").unlink()
    with pytest.raises(RunFolderError, match="probes.parquet is missing"):
        compare_run(run)


def test_cli_writes_table_and_plot_and_fails_in_one_line(tmp_path):
    run = make_run(tmp_path)
    exe = console_script("testbed")
    ok = subprocess.run([exe, "compare", str(run), "--seeds", "1"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert {p.name for p in (run / "compare").iterdir()} == {"compare.csv", "compare.parquet", "compare.png"}
    (run / "replay.json").write_text("{}")
    bad = subprocess.run([exe, "compare", str(run)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1 and "replay.json" in bad.stderr


def test_closed_loop_runs_share_the_node_unless_it_has_room(tmp_path):
    run = make_run(tmp_path)
    meta = json.loads((run / "replay.json").read_text())
    meta.pop("rate_per_s")
    meta["concurrency"] = 2  # two requests always outstanding on the one-core device
    (run / "replay.json").write_text(json.dumps(meta))
    shared = compare_run(run, seeds=(1,)).set_index("config")
    assert shared.loc["c-device", "simulated_s"] == pytest.approx(1.2, rel=0.02)  # 0.6 s each at half speed
    meta["nodes"] = {"device": {"capacity": 2}}
    (run / "replay.json").write_text(json.dumps(meta))
    roomy = compare_run(run, seeds=(1,)).set_index("config")
    assert roomy.loc["c-device", "simulated_s"] == pytest.approx(0.6, rel=0.02)


MULTI = """
name: multi
nodes:
  - {name: device-1, tier: device, cpus: 1.0, memory: 512m}
  - {name: device-2, tier: device, cpus: 1.0, memory: 512m}
  - {name: edge, tier: edge, cpus: 1.0, memory: 1g}
links:
  - {a: device-1, b: edge, bandwidth: 10mbit, rtt: 20ms}
  - {a: device-2, b: edge, bandwidth: 10mbit, rtt: 20ms}
"""


def test_the_folder_testbed_run_writes_per_model_is_read(tmp_path):
    # The shape testbed run wrote into RUN_DIR/<model>/ before replay.json (its meta was run.json, still read):
    # resources named after nodes, closed loop
    # of one request, an 'ok' column, a direction whose probe failed (NaN: the reply edge -> device-1 uses the
    # topology's 10 Mbit/s and 20 ms), a configuration never measured.
    run = tmp_path / "run" / "tiny"
    (run / "profiles").mkdir(parents=True)
    (run / "topology.yaml").write_text(MULTI)
    for node, tier, seconds in (("device-1", "device", 0.2), ("device-2", "device", 0.2), ("edge", "edge", 0.05)):
        blocks = tuple(Block(i, i, i, 10_000, LatencyStats.from_samples([seconds] * 3)) for i in range(2))
        write_model(run / "profiles", Resource(tier, node), ModelProfile("tiny", blocks, input_bytes=INPUT_BYTES), {})
    pd.DataFrame([
        {"a": "device-1", "b": "edge", "configured_mbps": 10.0, "configured_rtt_ms": 20.0, "measured_mbps": 9.6,
         "measured_rtt_ms": 20.5, "mechanism": "netem", "error": None},
        {"a": "edge", "b": "device-1", "configured_mbps": 10.0, "configured_rtt_ms": 20.0, "measured_mbps": None,
         "measured_rtt_ms": None, "mechanism": "netem", "error": "iperf timed out"},
    ]).to_parquet(run / "probes.parquet")
    configs = []
    for cid, counts in (("device:0-1", (0, 1, -1, -1)), ("device:0-0,edge:1-1", (0, 0, 1, 1)), ("edge:0-1", (-1, -1, 0, 1))):
        configs.append({"topology": "multi", "model": "tiny", "config": cid, "label": cid, "predicted_s": 0.3,
                        "device_resource": "device-device-1", "device_first_block": counts[0],
                        "device_last_block": counts[1], "edge_resource": "edge-edge" if counts[2] >= 0 else None,
                        "edge_first_block": counts[2], "edge_last_block": counts[3], "measured_s": float("nan")})
    pd.DataFrame(configs).to_parquet(run / "configs.parquet")
    rows = [{"topology": "multi", "model": "tiny", "config": "device:0-1", "label": "x", "request": i, "ok": True,
             "error": None, "latency_s": 0.4} for i in range(20)]
    rows += [{"topology": "multi", "model": "tiny", "config": "device:0-0,edge:1-1", "label": "y", "request": i,
              "ok": i != 0, "error": None, "latency_s": 99.0 if i == 0 else 0.2 + 0.01025 + 10_000 / (9.6 * 125_000) + 0.05
              + 0.010 + 10_000 / (10 * 125_000)}
             for i in range(20)]
    pd.DataFrame(rows).to_parquet(run / "requests.parquet")
    (run / "run.json").write_text(json.dumps({
        "topology": "topology.yaml", "model": "tiny", "concurrency": 1, "arrivals": "closed", "device": "device-1",
        "resources": {"device-1": "device-device-1", "device-2": "device-device-2", "edge": "edge-edge"}}))
    table = compare_run(run, seeds=(1,)).set_index("config")
    assert list(table.index) == ["device:0-1", "device:0-0,edge:1-1"]  # edge:0-1 was never measured
    assert table.loc["device:0-1", "simulated_s"] == pytest.approx(0.4, rel=1e-9)  # one device, one request at a time
    assert table.loc["device:0-0,edge:1-1", "measured_s"] < 1  # the failed request is left out
    assert table["within_15pct"].all()


def test_speed_probes_slow_the_probed_node_in_every_configuration(tmp_path):
    # The device ran 1.5x slower during the measurements than at its benchmark (median of its probes):
    # c-device, all on the device, measured 1.5x the profile's latency.
    run = make_run(tmp_path, offsets={"c-device": 1.5, "c-split": 1.0})
    plain = compare_run(run, seeds=(1,)).set_index("config")
    configs = pd.read_parquet(run / "configs.parquet")
    configs["device_node"] = "device"
    configs["edge_node"] = [None, "edge"]
    configs["predicted_adjusted_s"] = [0.9, 0.25]
    configs.to_parquet(run / "configs.parquet")
    pd.DataFrame([{"config": c, "node": "device", "round": r, "factor": f}
                  for c, factors in (("c-device", [1.4, 1.5]), ("c-split", [1.6, 1.5, 1.5]))
                  for r, f in enumerate(factors, 1)]).to_parquet(run / "speeds.parquet")
    table = compare_run(run, seeds=(1,)).set_index("config")
    assert not plain.loc["c-device", "within_15pct"] and table.loc["c-device", "within_15pct"]
    assert table.loc["c-device", "predicted_s"] == 0.6 and table.loc["c-device", "predicted_adjusted_s"] == 0.9
    assert json.loads(table.loc["c-device", "speed_factors"]) == {"device": 1.5}
    # c-split's device block (0.1 s) is slowed too: about 0.05 s more than without probes
    extra = table.loc["c-split", "simulated_s"] - plain.loc["c-split", "simulated_s"]
    assert 0.04 < extra < 0.07, extra


def test_a_speed_probe_on_an_unknown_node_is_named(tmp_path):
    run = make_run(tmp_path)
    pd.DataFrame([{"config": "c-device", "node": "toaster", "factor": 1.2}]).to_parquet(run / "speeds.parquet")
    with pytest.raises(RunFolderError, match="node 'toaster' is not in topology tiny"):
        compare_run(run, seeds=(1,))


def _ids_only_run(tmp_path, config_ids=None, ids=("device:0-2", "device:0-0,edge:1-2")):
    """make_run's folder with blocks of two layers each (block i = layers 2i, 2i+1) and no block columns:
    configurations are known by their ids alone. config_ids=None is a folder written before issue 12."""
    run = make_run(tmp_path)
    for label, times in BLOCKS.items():
        tier, name = label.split("-")
        blocks = tuple(Block(i, 2 * i, 2 * i + 1, OUT_BYTES[i], LatencyStats.from_samples([t * 0.95, t, t * 1.05]))
                       for i, t in enumerate(times))
        write_model(run / "profiles", Resource(tier, name), ModelProfile("tiny", blocks, input_bytes=INPUT_BYTES), {})
    names = dict(zip(("c-device", "c-split"), ids, strict=True))
    pd.DataFrame([{"config": names[c], "predicted_s": p} for c, p in (("c-device", 0.6), ("c-split", 0.2))]
                 ).to_parquet(run / "configs.parquet")
    requests = pd.read_parquet(run / "requests.parquet")
    requests["config"] = requests["config"].map(names)
    requests.to_parquet(run / "requests.parquet")
    meta = json.loads((run / "replay.json").read_text())
    if config_ids is not None:
        meta["config_ids"] = config_ids
    (run / "replay.json").write_text(json.dumps(meta))
    return run


def test_an_old_run_folders_unprefixed_block_ids_are_read_as_blocks(tmp_path):
    # before issue 12, 'device:0-0,edge:1-2' meant blocks; read as layers it would not even fit (layer 0 ends no block)
    table = compare_run(_ids_only_run(tmp_path), seeds=(1,))
    assert list(table["config"]) == ["device:0-2", "device:0-0,edge:1-2"]  # the join key, as stored
    assert list(table["split"]) == ["device:0-5", "device:0-1,edge:2-5"]  # the canonical (layer) ids
    assert list(table["block_split"]) == ["blocks:device:0-2", "blocks:device:0-0,edge:1-2"]


def test_a_new_run_folders_ids_are_layers(tmp_path):
    run = _ids_only_run(tmp_path, "layers", ids=("device:0-5", "device:0-1,edge:2-5"))
    table = compare_run(run, seeds=(1,))
    assert list(table["block_split"]) == ["blocks:device:0-2", "blocks:device:0-0,edge:1-2"]
    with pytest.raises(RunFolderError, match="configs.parquet: unknown configuration 'device:0-2'.*layers 0-5 in blocks 0-2"):
        compare_run(_ids_only_run(tmp_path / "x", "layers"), seeds=(1,))  # block ids in a layers folder: refused
