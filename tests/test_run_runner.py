"""`testbed run` against a fake emulation and fake agents: steps, rounds, faults, on_failure, the folder."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest
from pydantic import ValidationError
from run_fakes import fake_run, write_experiment, write_topology

import testbed.run.folder as folder_module
from emulator.topology import load_topology
from scission.network import Routes
from scission.problem import Configuration, Placement
from testbed.errors import ConfigurationError, ExperimentFileError, RunFolderError
from testbed.run.runner import Segment, Stage, plan_segments, plan_stages, split_requests
from testbed.run.spec import FaultSpec, experiment_from_dict, load_experiment


def _spec(tmp_path, tiers=("device", "edge", "cloud"), **extra):
    return load_experiment(write_experiment(tmp_path, write_topology(tmp_path, tiers), **extra))


def test_requests_spread_over_rounds_the_first_ones_larger():
    assert split_requests(7, 3) == [3, 2, 2]
    assert split_requests(2, 5) == [1, 1]  # never an empty round
    assert split_requests(4, 1) == [4]


@pytest.mark.parametrize(("first", "count", "faults", "applied", "expected"), [
    (0, 5, [], set(), [Segment(0, 5)]),
    (0, 5, [FaultSpec(config=1, after_requests=2, action="stop-node", node="cloud")], set(),
     [Segment(0, 2), Segment(2, 5, (0,))]),
    (0, 5, [FaultSpec(config="top-1", after_requests=0, action="stop-node", node="cloud")], set(),
     [Segment(0, 5, (0,))]),
    (3, 2, [FaultSpec(config=1, after_requests=1, action="stop-node", node="cloud")], set(),
     [Segment(3, 5, (0,))]),  # due in an earlier round: applied before this round's first request
    (0, 5, [FaultSpec(config=1, after_requests=2, action="stop-node", node="cloud")], {0}, [Segment(0, 5)]),
    (0, 5, [FaultSpec(config=2, after_requests=2, action="stop-node", node="cloud")], set(), [Segment(0, 5)]),
    (0, 6, [FaultSpec(config=1, after_requests=4, action="cut-link", link=("a", "b")),
            FaultSpec(config="top-1", after_requests=2, action="stop-node", node="x")], set(),
     [Segment(0, 2), Segment(2, 4, (1,)), Segment(4, 6, (0,))]),
])
def test_a_round_is_cut_where_a_fault_of_its_configuration_is_due(first, count, faults, applied, expected):
    assert plan_segments(first, count, faults, 1, "top-1", applied) == expected


def test_the_spec_is_the_frozen_file_model_and_a_fault_names_its_target(tmp_path):
    topology = write_topology(tmp_path)
    spec = experiment_from_dict({"topology": topology.name, "models": ["MobileNetV2"]}, tmp_path)
    assert spec.topology == topology.resolve() and spec.models == ("mobilenetv2",) and spec.name == "experiment"
    with pytest.raises(ValidationError):
        spec.requests = 3  # frozen
    with pytest.raises(ExperimentFileError, match="stop-node needs node"):
        experiment_from_dict({"topology": str(topology), "models": ["mobilenetv2"],
                              "faults": [{"action": "stop-node"}]}, tmp_path)
    with pytest.raises(ExperimentFileError, match="does not exist"):
        experiment_from_dict({"topology": "missing.yaml", "models": ["mobilenetv2"]}, tmp_path)


def test_every_step_runs_and_rounds_interleave_the_configurations(tmp_path):
    spec = _spec(tmp_path, requests=3, rounds=2, warmup_requests=1)
    results, emu, agents = fake_run(spec, tmp_path / "out")
    assert emu.is_down
    kinds = [c[0] for c in agents.calls]
    assert kinds[0] == "start" and kinds.count("benchmark") == 3
    configs = results.configs["mobilenetv2"]
    labels = list(configs["label"])
    assert labels[0] == "top-1" and {"device-only", "edge-only", "cloud-only"} - set(labels) <= {
        lab for lab in ("device-only", "edge-only", "cloud-only") if lab not in labels}
    # Drives in order: per round, each configuration (warm-up only in round 1), then the next round.
    drives = [c for c in agents.calls if c[0] == "drive"]
    n = len(labels)
    assert [d[2] for d in drives] == [1, 2] * n + [1] * n  # warm-up 1 + 2 requests, then 1 request in round 2
    assert [d[1] for d in drives[2 * n:]] == [d[1] for d in drives[:2 * n:2]]  # round 2 keeps the order
    requests = pd.read_parquet(tmp_path / "out" / "requests.parquet")
    for _, part in requests.groupby("config"):
        assert sorted(part["request"]) == [1, 2, 3]
    assert (configs["requests_ok"] == 3).all() and configs["measured_s"].notna().all()
    assert configs["predicted_adjusted_s"].notna().all()
    status = json.loads((tmp_path / "out" / "status.json").read_text())
    assert status["status"] == "done" and status["tiers"] == ["device", "edge", "cloud"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary[0]["prediction"] == "profile" and "speed_adjusted" in summary[0] and summary[0]["configurations"] == n
    replay = json.loads((tmp_path / "out" / "mobilenetv2" / "replay.json").read_text())
    assert replay["device"] == "device" and replay["concurrency"] == 1


def test_a_scripted_fault_fails_the_later_requests_of_its_configuration_only(tmp_path):
    spec = _spec(tmp_path, requests=3, rounds=1, top_k=1,
                 faults=[{"config": "cloud-only", "after_requests": 1, "action": "stop-node", "node": "cloud"}])
    results, emu, _ = fake_run(spec, tmp_path / "out")
    assert emu.stopped == {"cloud"}
    requests = pd.read_parquet(tmp_path / "out" / "requests.parquet")
    configs = results.configs["mobilenetv2"].set_index("label")
    cloud = requests[requests.config == configs.loc["cloud-only", "config"]].sort_values("request")
    assert cloud["ok"].tolist() == [True, False, False]
    assert configs.loc["cloud-only", "requests_failed"] == 2
    assert "timed out" in configs.loc["cloud-only", "error"]
    assert [e["event"] for e in results.events] == ["stopped node cloud"]
    status = json.loads((tmp_path / "out" / "status.json").read_text())
    assert status["status"] == "done" and status["events"][0]["config"] == configs.loc["cloud-only", "config"]


def test_on_failure_stop_ends_the_run_cleanly_at_the_first_failed_request(tmp_path):
    spec = _spec(tmp_path, requests=3, rounds=1, top_k=1, on_failure="stop",
                 faults=[{"config": 1, "after_requests": 1, "action": "stop-node", "node": "device"}])
    results, emu, agents = fake_run(spec, tmp_path / "out")
    configs = results.configs["mobilenetv2"]
    assert emu.is_down
    assert configs.iloc[0][["requests_ok", "requests_failed"]].tolist() == [1, 1]  # stop_on_failure: no third
    assert (configs.iloc[1:]["requests_ok"] + configs.iloc[1:]["requests_failed"] == 0).all()
    assert json.loads((tmp_path / "out" / "status.json").read_text())["status"] == "done"


@pytest.mark.parametrize("on_failure", ["continue", "stop"])
def test_a_failed_drive_call_is_that_configurations_failure(tmp_path, on_failure):
    spec = _spec(tmp_path, requests=2, rounds=2, top_k=1, on_failure=on_failure, warmup_requests=0)
    results, _, agents = fake_run(spec, tmp_path / "out", fail_drive=frozenset({"cloud"}))
    configs = results.configs["mobilenetv2"].set_index("label")
    assert "connection refused" in configs.loc["cloud-only", "error"]
    assert configs.loc["cloud-only", "requests_ok"] == 0
    assert any("cloud-only" in n and "connection refused" in n for n in results.notes)
    others = configs.drop(index="cloud-only")
    others = others[~others["config"].str.contains("cloud")]
    status = json.loads((tmp_path / "out" / "status.json").read_text())
    assert status["status"] == "done"
    cloud_drives = [c for c in agents.calls if c[0] == "drive" and "cloud" in c[1]]
    if on_failure == "continue":
        assert (others["requests_ok"] == 2).all()  # every other configuration is measured in both rounds
        assert len(cloud_drives) == sum("cloud" in c for c in configs["config"])  # a failed one is not retried
    else:
        order = list(configs.index)
        after = order[order.index("cloud-only") + 1:]
        assert (configs.loc[after, "requests_ok"] == 0).all()


def test_tables_are_appended_and_a_checkpoint_writes_only_what_changed(tmp_path, monkeypatch):
    written: list[str] = []
    real = folder_module.atomic_write_parquet

    def spy(frame, path):
        written.append(str(path.relative_to(tmp_path / "out")))
        return real(frame, path)

    monkeypatch.setattr(folder_module, "atomic_write_parquet", spy)
    spec = _spec(tmp_path, requests=4, rounds=4, top_k=1, speed_probe_passes=0)
    results, _, _ = fake_run(spec, tmp_path / "out")
    top = [w for w in written if "/" not in w]
    assert top.count("probes.parquet") == 1  # set once, never rewritten by the request rounds
    assert top.count("profiles.parquet") == 3  # once per benchmarked node
    assert "speeds.parquet" not in top
    rounds = 4 * len(results.configs["mobilenetv2"])
    assert top.count("requests.parquet") == rounds  # one checkpoint per configuration and round
    assert len(results.rows["requests"]) == rounds
    assert pd.read_parquet(tmp_path / "out" / "requests.parquet").shape[0] == rounds


def test_an_unreadable_profile_is_said_not_skipped(tmp_path, caplog):
    spec = _spec(tmp_path)
    caplog.set_level(logging.WARNING)
    with pytest.raises(RunFolderError):
        fake_run(spec, tmp_path / "out", broken_profile="edge")
    status = json.loads((tmp_path / "out" / "status.json").read_text())
    assert any(n.startswith("profiles.parquet leaves out mobilenetv2") for n in status["notes"])
    assert any("profiles.parquet leaves out" in r.getMessage() for r in caplog.records)
    assert status["status"] == "failed"


def test_four_tiers_run_end_to_end_on_the_fakes(tmp_path):
    spec = _spec(tmp_path, tiers=("device", "gateway", "edge", "cloud"), requests=2, rounds=2, top_k=1)
    results, _, _ = fake_run(spec, tmp_path / "out")
    configs = pd.read_parquet(tmp_path / "out" / "configs.parquet")
    for tier in ("device", "gateway", "edge", "cloud"):
        assert {f"{tier}_first_block", f"{tier}_last_block", f"{tier}_node", f"{tier}_compute_s"} <= set(configs)
        assert f"{tier}:0-2" in set(configs["config"])  # every native, the chain's relays carry the others
    assert (configs["requests_ok"] == 2).all() and configs["error"].isna().all()
    assert not any("left out" in n for n in results.notes)
    status = json.loads((tmp_path / "out" / "status.json").read_text())
    assert status["tiers"] == ["device", "gateway", "edge", "cloud"] and status["status"] == "done"


CHAIN = ("device", "gateway", "edge", "cloud")


def _config(counts: dict[str, int]) -> Configuration:
    """A configuration over the chain's tiers running ``counts[tier]`` blocks on the node of that name."""
    placements, first = [], 0
    for tier in CHAIN:
        n = counts.get(tier, 0)
        block = (first, first + n - 1) if n else (-1, -1)
        placements.append(Placement(tier, tier if n or tier == "device" else None, *block, *block, 0.0, 0.0))
        first += n
    return Configuration(0.0, 0.0, tuple(placements))


@pytest.mark.parametrize(("counts", "expected"), [
    ({"cloud": 3}, [Stage("device", 0, -1), Stage("gateway", 0, -1), Stage("edge", 0, -1), Stage("cloud", 0, 2)]),
    ({"device": 1, "edge": 2}, [Stage("device", 0, 0), Stage("gateway", 1, 0), Stage("edge", 1, 2)]),
    ({"device": 1, "gateway": 1, "cloud": 1},
     [Stage("device", 0, 0), Stage("gateway", 1, 1), Stage("edge", 2, 1), Stage("cloud", 2, 2)]),
    ({"device": 3}, [Stage("device", 0, 2)]),
])
def test_the_data_path_visits_every_relay_with_the_next_nodes_first_block(counts, expected):
    stages = plan_stages(_config(counts), Routes(zip(CHAIN, CHAIN[1:], strict=False)))
    assert stages == expected
    assert [s.is_relay for s in stages] == [s.first_block > s.last_block for s in expected]


def test_a_data_path_that_crosses_a_node_twice_is_that_configurations_error():
    star = Routes([("gateway", "device"), ("gateway", "edge"), ("gateway", "cloud")])
    with pytest.raises(ConfigurationError, match="device -> gateway -> edge -> gateway -> cloud visits gateway twice"):
        plan_stages(_config({"device": 1, "edge": 1, "cloud": 1}), star)
    assert [s.node for s in plan_stages(_config({"cloud": 3}), star)] == ["device", "gateway", "cloud"]


def test_a_cloud_only_deploy_on_a_chain_loads_the_relays_downstream_first(tmp_path):
    spec = _spec(tmp_path, tiers=CHAIN, requests=1, rounds=1, top_k=1, warmup_requests=0, speed_probe_passes=0)
    results, emu, agents = fake_run(spec, tmp_path / "out")
    configs = results.configs["mobilenetv2"].set_index("config")
    position = list(configs.index).index("cloud:0-2")
    loads = [c for c in agents.calls if c[0] in ("load", "drive")]
    deploys, current = [], []
    for call in loads:  # one deploy per configuration: its loads, then its drive
        if call[0] == "drive":
            deploys.append(current)
            current = []
        else:
            current.append(call[1:])
    address = emu.address
    assert deploys[position] == [
        ("cloud", 0, 2, None, None),
        ("edge", 0, -1, "cloud", address("cloud", "edge")),
        ("gateway", 0, -1, "edge", address("edge", "gateway")),
        ("device", 0, -1, "gateway", address("gateway", "device")),
    ]
    hops = pd.read_parquet(tmp_path / "out" / "hops.parquet")
    cloud = hops[hops.config == "cloud:0-2"].sort_values("hop")
    assert cloud["node"].tolist() == list(CHAIN)
    assert cloud["compute_s"].tolist()[:3] == [0.0, 0.0, 0.0] and cloud["compute_s"].iloc[3] > 0
    requests = pd.read_parquet(tmp_path / "out" / "requests.parquet")
    row = requests[requests.config == "cloud:0-2"].iloc[0]
    assert row["ok"] and row["compute_s"] == pytest.approx(row["cloud_compute_s"])
    assert (tmp_path / "out" / "plots" / "breakdown-mobilenetv2.png").exists()


def test_nodes_benchmark_at_once_only_when_their_cpus_fit_the_host_and_the_profiles_are_the_same(tmp_path):
    import threading
    import time

    from run_fakes import FakeAgents

    class SlowAgents(FakeAgents):
        """Benchmarks that take a while, counting how many run at the same moment."""
        lock, running, most = threading.Lock(), 0, 0

        def benchmark(self, node, model, repeats, tier, runtime="auto"):
            with SlowAgents.lock:
                SlowAgents.running += 1
                SlowAgents.most = max(SlowAgents.most, SlowAgents.running)
            time.sleep(0.2)
            with SlowAgents.lock:
                SlowAgents.running -= 1
            return super().benchmark(node, model, repeats, tier, runtime)

    frames = {}
    for parallel in (True, False):
        SlowAgents.most = 0
        (tmp_path / str(parallel)).mkdir()
        spec = _spec(tmp_path / str(parallel), requests=1, rounds=1, parallel_benchmark=parallel)
        results, _, agents = fake_run(spec, tmp_path / f"out-{parallel}", agents_class=SlowAgents)
        assert SlowAgents.most == (3 if parallel else 1)
        # speed probes and profile writes stay in node order after the benchmarks
        assert [c[1] for c in agents.calls if c[0] == "speed"][:3] == ["device", "edge", "cloud"]
        frames[parallel] = pd.read_parquet(tmp_path / f"out-{parallel}" / "profiles.parquet")
    pd.testing.assert_frame_equal(frames[True], frames[False])


def test_parallel_benchmark_is_asked_for_and_leaves_the_delay_lines_room(tmp_path, monkeypatch):
    from testbed.run import runner
    from testbed.run.results import RunResults

    run = runner._Run.__new__(runner._Run)
    run.spec = _spec(tmp_path)
    run.topology = load_topology(run.spec.topology)
    run.results = RunResults(run.spec, run.topology)
    total = sum(n.cpus for n in run.topology.nodes)
    monkeypatch.setattr(runner, "host_cpus", lambda: total + runner.HOST_RESERVE_CPUS)
    assert not run.parallel_benchmark()  # off unless asked for: taken at once, profiles show the host
    run.spec = run.spec.model_copy(update={"parallel_benchmark": True})
    assert run.parallel_benchmark()
    monkeypatch.setattr(runner, "host_cpus", lambda: total)
    assert not run.parallel_benchmark()


def test_an_unknown_runtime_in_the_experiment_file_is_one_line_and_exit_2(tmp_path):
    import subprocess
    import sys

    from conftest import REPO

    path = write_experiment(tmp_path, write_topology(tmp_path), runtime="tensorrt")
    done = subprocess.run([sys.executable, "-m", "testbed.cli", "run", str(path), "--out", str(tmp_path / "out")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert str(path) in lines[0] and "runtime" in lines[0] and "unknown runtime 'tensorrt'" in lines[0], lines
    assert not (tmp_path / "out").exists()  # nothing was brought up
    assert load_experiment(write_experiment(tmp_path, write_topology(tmp_path))).runtime == "auto"


def test_nodes_serve_in_the_runtime_their_profile_recorded_and_the_folder_keeps_compile_times(tmp_path):
    """The benchmark is asked for the experiment's runtime; every load then names the runtime the node's own
    profile was timed in, and loads.parquet keeps what each one compiled (a range new to the node pays)."""
    spec = _spec(tmp_path, runtime="tf-function", requests=2, rounds=2)
    results, _, agents = fake_run(spec, tmp_path / "out")
    assert agents.benchmark_runtimes == ["tf-function"] * 3
    assert {runtime for _, runtime in agents.runtimes} == {"tf-function"}  # the fakes' profiles say tf-function
    loads = pd.read_parquet(tmp_path / "out" / "loads.parquet")
    assert set(loads.columns) >= {"node", "config", "round", "runtime", "requested_runtime", "compile_s", "cached"}
    first = loads[loads["round"] == 1].drop_duplicates(["node", "first_block", "last_block"])
    assert (first["compile_s"] == 0.5).all() and not first["cached"].any()
    assert (loads[loads["round"] == 2]["cached"]).all() and (loads[loads["round"] == 2]["compile_s"] == 0).all()
    profiles = pd.read_parquet(tmp_path / "out" / "profiles.parquet")
    assert set(profiles["runtime"]) == {"tf-function"} and set(profiles["compile_s"]) == {1.25}
