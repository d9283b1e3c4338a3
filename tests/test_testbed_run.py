"""`testbed run` end to end on a real Docker Engine: a small model, few requests, protocol errors, a fault.

Under CI=true these fail (never skip) when no engine answers; scripts/test.sh starts one.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, console_script, require_docker

pytestmark = [pytest.mark.docker, pytest.mark.tf, pytest.mark.slow]


_engine_or_fail = require_docker


def _topology(folder: Path, name: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "name": name,
        "nodes": [
            {"name": "device", "tier": "device", "cpus": 0.5, "memory": "1g"},
            {"name": "edge", "tier": "edge", "cpus": 1.0, "memory": "1g"},
            {"name": "cloud", "tier": "cloud", "cpus": 1.0, "memory": "1g"},
        ],
        "links": [
            {"a": "device", "b": "edge", "bandwidth": "20mbit", "rtt": "20ms"},
            {"a": "edge", "b": "cloud", "bandwidth": "50mbit", "rtt": "10ms"},
            {"a": "device", "b": "cloud", "bandwidth": "10mbit", "rtt": "40ms"},
        ],
    }))
    return path


def _experiment(folder: Path, topology: Path, **extra) -> Path:
    doc = {"name": topology.stem, "topology": str(topology), "models": ["mobilenetv2"], "repeats": 2,
           "requests": 3, "top_k": 1, "native": True, "request_timeout_s": 20}
    doc.update(extra)
    path = folder / f"{topology.stem}-experiment.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _running(name: str) -> bool:
    from emulator import lifecycle

    return name in lifecycle.running_names()


def _testbed_run(experiment: Path, out: Path, topology: str) -> None:
    """`testbed run` as a user runs it; it must succeed and leave the topology down."""
    result = subprocess.run([console_script("testbed"), "run", str(experiment), "--out", str(out)],
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not _running(topology)


def _native_id(configs: pd.DataFrame, tier: str) -> str:
    """The layer-range id of the configuration that runs every block on ``tier``."""
    last = int(configs["device_last_block"].max())
    return configs.loc[configs["block_config"] == f"blocks:{tier}:0-{last}", "config"].iloc[0]


def test_run_measures_every_configuration_and_brings_the_topology_down(tmp_path):
    _engine_or_fail()
    experiment = _experiment(tmp_path, _topology(tmp_path, "tbtest-run"))
    out = tmp_path / "out"
    _testbed_run(experiment, out, "tbtest-run")
    configs = pd.read_parquet(out / "configs.parquet")
    assert "top-1" in set(configs["label"])
    # the native configurations are measured, under their own label unless one of them is also a top-k
    last = int(configs["device_last_block"].max())
    # ids are layer ranges (as predict prints them); block_config carries the block form
    assert {f"blocks:device:0-{last}", f"blocks:edge:0-{last}", f"blocks:cloud:0-{last}"} <= set(configs["block_config"])
    singles = {c for c in configs["config"] if c.count(":") == 1}
    assert {c.split(":")[0] for c in singles} == {"device", "edge", "cloud"} and len({c.split(":")[1] for c in singles}) == 1
    assert (configs["requests_ok"] == 3).all() and configs["measured_s"].notna().all()
    requests = pd.read_parquet(out / "requests.parquet")
    assert requests["ok"].all()
    assert {"latency_s", "compute_s", "transfer_s"} <= set(requests.columns)
    hops = pd.read_parquet(out / "hops.parquet")
    edge_only = hops[(hops.config == _native_id(configs, "edge")) & (hops.node == "edge")]
    assert len(edge_only) and (edge_only["transfer_in_s"] > 0.01).all()  # 20 ms RTT link: at least the one-way delay
    probes = pd.read_parquet(out / "probes.parquet")
    assert len(probes) == 6 and probes["measured_mbps"].notna().all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary[0]["model"] == "mobilenetv2"
    assert set(summary[0]) >= {"median_rel_error", "spearman", "regret"}
    # compute-speed probes: a reference per node after its benchmark, then one per computing node and round
    speeds = pd.read_parquet(out / "speeds.parquet")
    assert set(speeds[speeds["label"] == "benchmark"]["node"]) == {"device", "edge", "cloud"}
    assert (speeds["probe_s"] > 0).all() and (speeds["factor"] > 0).all()
    assert configs["predicted_adjusted_s"].notna().all() and summary[0]["prediction"] == "profile"
    assert "speed_adjusted" in summary[0]
    # the agents serve compiled ranges in the runtime each node's profile recorded, and say what compiling cost
    profiles = pd.read_parquet(out / "profiles.parquet")
    loads = pd.read_parquet(out / "loads.parquet")
    runtime_of = dict(zip(profiles["node"], profiles["runtime"], strict=False))
    assert set(runtime_of.values()) <= {"tf-function", "onnxruntime", "litert"}
    assert all(runtime_of[r.node] == r.requested_runtime for r in loads.itertuples())
    assert (loads["runtime"] == loads["requested_runtime"]).all() and (loads["compile_s"] >= 0).all()
    # a range is compiled once per agent: later loads (and ranges the speed probe compiled) pay nothing
    assert (loads[loads["cached"]]["compile_s"] == 0).all() and loads["cached"].iloc[-len(configs):].all()
    assert (out / "plots" / "predicted-vs-measured.png").exists()
    assert (out / "plots" / "breakdown-mobilenetv2.png").exists()
    assert (out / "summary.md").read_text().startswith("# testbed run")
    # the run folder is what `testbed compare` and `testbed report` read
    assert (out / "mobilenetv2" / "replay.json").exists()
    report = subprocess.run([console_script("testbed"), "report", str(out)], capture_output=True, text=True,
                            timeout=300)
    assert report.returncode == 0, report.stderr


def test_a_node_stopped_mid_run_fails_its_requests_cleanly(tmp_path):
    _engine_or_fail()
    experiment = _experiment(
        tmp_path, _topology(tmp_path, "tbtest-fault"), native=True, top_k=1, requests=3, rounds=1,
        request_timeout_s=8,
        faults=[{"config": "cloud-only", "after_requests": 1, "action": "stop-node", "node": "cloud"}],
    )
    out = tmp_path / "out"
    _testbed_run(experiment, out, "tbtest-fault")
    requests = pd.read_parquet(out / "requests.parquet")
    configs = pd.read_parquet(out / "configs.parquet").set_index("label")
    cloud = requests[requests.config == configs.loc["cloud-only", "config"]]
    assert cloud["ok"].tolist() == [True, False, False]
    failed = cloud[~cloud["ok"]]
    assert (failed["latency_s"] < 8 + 5).all()  # bounded by the request timeout
    assert failed["error"].str.contains("timed out|failed", regex=True).all()
    run = json.loads((out / "status.json").read_text())
    assert run["status"] == "done"
    assert any("stopped node cloud" in e["event"] for e in run["events"])
    others = requests[requests.config != configs.loc["cloud-only", "config"]]
    assert others["ok"].all()


def test_agent_rejects_bad_messages_over_the_emulated_network(tmp_path):
    _engine_or_fail()
    from emulator.emulation import Emulation
    from emulator.topology import load_topology
    from testbed.agent.server import DEFAULT_PORT as AGENT_PORT
    from testbed.run.agents import AgentClient

    topology = load_topology(_topology(tmp_path, "tbtest-agent"))
    with Emulation.up(topology) as emu:
        agents = AgentClient(emu, topology)
        agents.start()
        agents.load("edge", "mobilenetv2", 10, 12, 0, None)
        edge = emu.address("edge", "device")
        script = textwrap.dedent(f"""
            import json, socket, struct
            def send(data):
                s = socket.create_connection(("{edge}", {AGENT_PORT}), timeout=20)
                s.sendall(data)
                n = struct.unpack(">I", s.recv(4))[0]
                body = b""
                while len(body) < n:
                    body += s.recv(n - len(body))
                s.close()
                return json.loads(body)
            def frame(h, p=b""):
                raw = json.dumps(h).encode()
                return struct.pack(">I", len(raw)) + raw + p
            out = [
                send(struct.pack(">I", 4) + b"junk"),
                send(frame({{"op": "infer", "shape": [1, 2], "dtype": "complex64", "nbytes": 16}}, bytes(16))),
                send(frame({{"op": "infer", "shape": [1, 9, 9, 9], "dtype": "float32", "nbytes": 2916}}, bytes(2916))),
                send(frame({{"op": "infer", "shape": [1, 1], "dtype": "float32", "nbytes": 1 << 30}})),
                send(frame({{"op": "ping"}})),
            ]
            print(json.dumps(out))
        """)
        code, output = emu.exec("device", ["python", "-c", script])
        assert code == 0, output
        replies = json.loads(output.strip().splitlines()[-1])
        assert [r["ok"] for r in replies] == [False, False, False, False, True]
        assert "JSON" in replies[0]["error"]
        assert "not allowed" in replies[1]["error"]
        assert "does not match this stage's input" in replies[2]["error"]
        assert "exceeds the cap" in replies[3]["error"]
    assert not _running("tbtest-agent")


def test_emulated_sweep_point_runs_a_real_experiment(tmp_path):
    _engine_or_fail()
    from testbed.sweep.runner import run_sweep
    from testbed.sweep.spec import load_sweep

    experiment = _experiment(tmp_path, _topology(tmp_path, "tbtest-sweep"), requests=2, top_k=1, native=False)
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({
        "name": "emulated", "base": {"experiment": str(experiment)},
        "axes": {"bandwidth": {"values": [5], "unit": "mbit"}}, "replications": 1}))
    outcome = run_sweep(load_sweep(tmp_path / "sweep.yaml"), tmp_path / "out")
    table = pd.read_parquet(outcome.results_path)
    assert outcome.ran == 1 and len(table) == 1
    row = table.iloc[0]
    assert row["bandwidth_mbps"] == 5.0 and row["model"] == "mobilenetv2" and row["error"] is None
    assert row["requests_ok"] == 2 and row["measured_s"] > 0 and row["predicted_s"] > 0
    probes = pd.read_parquet(next((tmp_path / "out" / "work").rglob("probes.parquet")))
    device_edge = probes[(probes.a == "device") & (probes.b == "edge")].iloc[0]
    assert device_edge["configured_mbps"] == 5.0  # the point's bandwidth reached the emulated link
    assert not _running("tbtest-sweep")


def test_four_tiers_run_end_to_end(tmp_path):
    _engine_or_fail()
    doc = yaml.safe_load((REPO / "experiments" / "run-four-tier.yaml").read_text())
    doc.update(topology=str(REPO / "topologies" / "four-tier.yaml"), request_timeout_s=30, repeats=2, requests=2,
               rounds=2)
    experiment = tmp_path / "four.yaml"
    experiment.write_text(yaml.safe_dump(doc))
    out = tmp_path / "out"
    _testbed_run(experiment, out, "four-tier")
    configs = pd.read_parquet(out / "configs.parquet")
    for tier in ("device", "gateway", "edge", "cloud"):
        assert {f"{tier}_first_block", f"{tier}_last_block", f"{tier}_node"} <= set(configs.columns)
    last = int(configs["device_last_block"].max())
    natives = {f"blocks:{tier}:0-{last}" for tier in ("device", "gateway", "edge", "cloud")}
    assert natives <= set(configs["block_config"])  # edge-only and cloud-only through the relays of the chain
    assert (configs["requests_ok"] == 2).all() and configs["measured_s"].notna().all()
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "done" and status["tiers"] == ["device", "gateway", "edge", "cloud"]
    assert not any("left out" in n for n in status["notes"])
    requests = pd.read_parquet(out / "requests.parquet")
    assert requests["ok"].all()
    hops = pd.read_parquet(out / "hops.parquet")
    cloud = hops[hops.config == _native_id(configs, "cloud")]
    assert len(cloud)
    for _, request in cloud.groupby("request"):
        request = request.sort_values("hop")
        assert request["node"].tolist() == ["device", "gateway", "edge", "cloud"]
        relays = request.iloc[1:3]  # gateway and edge forward the input as it is
        assert (relays["first_block"] == 0).all() and (relays["last_block"] == -1).all()
        assert (relays["compute_s"] < 0.05).all() and (relays["transfer_in_s"] > 0).all()
        assert relays["bytes_in"].nunique() == 1 and request["bytes_in"].iloc[3] == relays["bytes_in"].iloc[0]
    predicted = configs.set_index("config")["predicted_s"]
    assert predicted[_native_id(configs, "cloud")] > 0 and predicted[_native_id(configs, "edge")] > 0
