"""`testbed simulate` end to end: outputs, the JSON summary, and one clear line with exit 2 on bad input."""

from __future__ import annotations

import json
import subprocess

import pandas as pd
import pytest
import yaml
from conftest import LEGACY_DIR, REPO, console_script

WIFI = REPO / "topologies" / "three-tier-wifi.yaml"


def write_sim(tmp_path, **changes):
    doc = {
        "name": "cli-test",
        "topology": str(WIFI),
        "profiles": str(LEGACY_DIR),
        "resources": {"device": "device-raspi4", "edge": "edge-2500", "cloud": "cloud-6700k(NoGPU)"},
        "model": "mobilenetv2",
        "arrivals": {"kind": "poisson", "rate_per_s": 1.0},
        "stop": {"requests": 300},
        "seeds": [1, 2],
        "policies": [{"kind": "static", "rank": 1}, {"kind": "oracle"}],
    }
    doc.update(changes)
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def run_testbed(*args, cwd=REPO):
    return subprocess.run([console_script("testbed"), *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def assert_one_line_exit_2(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_json_summary_reports_requests_wall_time_and_speed(tmp_path):
    out = run_testbed("simulate", str(write_sim(tmp_path)), "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["requests"] == 2 * 2 * 300
    assert summary["wall_s"] > 0 and summary["requests_per_s"] > 0
    oracle = summary["policies"]["oracle"]
    assert set(oracle) >= {"p50_s", "p95_s", "p99_s", "p95_s_ci95", "throughput_per_s", "regret_s", "repartitions",
                           "overhead_fraction", "node_utilisation", "link_utilisation", "bytes_transferred"}
    assert summary["policies"]["static"]["regret_s"] == pytest.approx(0.0, abs=1e-12)


def test_out_folder_holds_tables_and_plots(tmp_path):
    sim = write_sim(tmp_path, records=True, conditions=[
        {"kind": "step", "link": "device>edge", "bandwidth_mbps": [[0, 1.6], [100, 0.5]]}])
    out = run_testbed("simulate", str(sim), "--out", str(tmp_path / "out"))
    assert out.returncode == 0, out.stderr
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert names >= {"summary.json", "runs.parquet", "timeline.parquet", "requests.parquet", "latency_over_time.png",
                     "latency_cdf.png"}
    requests = pd.read_parquet(tmp_path / "out" / "requests.parquet")
    assert list(requests.columns) == ["policy", "seed", "request", "device", "config", "arrival_s", "finish_s", "latency_s",
                                      "compute_s", "transfer_s", "propagation_s"]
    parts = requests["compute_s"] + requests["transfer_s"] + requests["propagation_s"]
    assert (parts - requests["latency_s"]).abs().max() < 1e-9
    assert len(requests) == 2 * 2 * 300
    runs = pd.read_parquet(tmp_path / "out" / "runs.parquet")
    assert "node_utilisation[edge]" in runs.columns and "link_bytes[device>edge]" in runs.columns


def test_unknown_configuration_is_one_line_and_exit_2(tmp_path):
    sim = write_sim(tmp_path, policies=[{"kind": "static", "configuration": "device:0-9,edge:12-65"}])
    assert_one_line_exit_2(run_testbed("simulate", str(sim)), "unknown configuration", "next layer to run is 10",
                      "the model has layers 0-156 in blocks 0-65")


def test_configuration_on_a_tier_the_device_cannot_reach_is_refused(tmp_path):
    sim = write_sim(tmp_path, resources={"device": "device-raspi4"}, policies=[{"kind": "edge-only"}])
    assert_one_line_exit_2(run_testbed("simulate", str(sim)), "edge")


def test_negative_bandwidth_in_a_step_trace_is_one_line_and_exit_2(tmp_path):
    sim = write_sim(tmp_path, conditions=[{"kind": "step", "link": "device>edge", "bandwidth_mbps": [[0, 1.6], [10, -2]]}])
    assert_one_line_exit_2(run_testbed("simulate", str(sim)), "conditions[0]", "bandwidth -2 Mbit/s")


def test_negative_bandwidth_in_a_csv_trace_is_one_line_and_exit_2(tmp_path):
    trace = tmp_path / "bw.csv"
    trace.write_text("time_s,bandwidth_mbps\n0,1.6\n30,-0.5\n")
    sim = write_sim(tmp_path, conditions=[{"kind": "csv", "link": "device>edge", "path": str(trace)}])
    assert_one_line_exit_2(run_testbed("simulate", str(sim)), "row 2", "bandwidth -0.5 Mbit/s")


def test_a_profile_missing_a_needed_resource_is_one_line_and_exit_2(tmp_path):
    sim = write_sim(tmp_path, resources={"device": "device-raspi4", "edge": "edge-nuc", "cloud": "cloud-6700k(NoGPU)"})
    assert_one_line_exit_2(run_testbed("simulate", str(sim)), "edge-nuc", "node edge")


def test_a_missing_field_is_named(tmp_path):
    sim = write_sim(tmp_path)
    doc = yaml.safe_load(sim.read_text())
    del doc["arrivals"]["rate_per_s"]
    sim.write_text(yaml.safe_dump(doc))
    assert_one_line_exit_2(run_testbed("simulate", str(sim)), "arrivals", "rate_per_s")


def test_a_bad_policy_field_is_named(tmp_path):
    sim = write_sim(tmp_path, policies=[{"kind": "periodic", "period_s": -5, "overhead_s": 1}])
    assert_one_line_exit_2(run_testbed("simulate", str(sim)), "policies[0].period_s")


def test_periodic_without_wall_time_or_overhead_is_refused(tmp_path):
    sim = write_sim(tmp_path, policies=[{"kind": "periodic", "period_s": 30}])
    assert_one_line_exit_2(run_testbed("simulate", str(sim)), "wall time", "overhead_s")


def test_a_link_not_in_the_topology_is_refused(tmp_path):
    sim = write_sim(tmp_path, conditions=[{"kind": "step", "link": "edge>nowhere", "bandwidth_mbps": [[0, 1]]}])
    assert_one_line_exit_2(run_testbed("simulate", str(sim)), "conditions[0].link")


def test_a_missing_file_is_one_line(tmp_path):
    assert_one_line_exit_2(run_testbed("simulate", str(tmp_path / "nope.yaml")), "does not exist")


def test_overload_is_reported_unstable_without_running_forever(tmp_path):
    sim = write_sim(tmp_path, arrivals={"kind": "poisson", "rate_per_s": 50.0}, stop={"requests": 10_000_000},
                    max_in_flight=300, policies=[{"kind": "device-only"}], seeds=[1])
    out = run_testbed("simulate", str(sim), "--json")
    assert out.returncode == 0
    summary = json.loads(out.stdout)
    assert summary["stable"] is False
    assert "in flight" in summary["policies"]["device-only"]["unstable_reason"]
    assert "unstable" in out.stderr


def test_shipped_simulation_files_load_and_run(tmp_path):
    for path in sorted((REPO / "experiments").glob("sim-*.yaml")):
        out = run_testbed("simulate", str(path), "--requests", "200", "--seeds", "1", "--json")
        assert out.returncode == 0, f"{path.name}: {out.stderr}"
