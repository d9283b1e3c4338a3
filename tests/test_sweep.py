"""Sweeps: spec checks before anything runs, tidy results, resuming, interruption, Dask, the CLI."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, console_script

from testbed.errors import SweepError
from testbed.sweep.runner import run_sweep
from testbed.sweep.spec import load_sweep, sweep_from_dict

BASE = REPO / "experiments" / "sim-legacy-partition.yaml"


def write_sweep(folder: Path, **changes) -> Path:
    doc = {
        "name": "t",
        "base": {"simulation": str(BASE)},
        "axes": {"bandwidth": {"values": [1, 50], "unit": "mbit"}, "model": ["mobilenetv2", "resnet50"]},
        "replications": 2,
    }
    doc.update(changes)
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_grid_expands_with_seeds_and_units(tmp_path):
    spec = load_sweep(write_sweep(tmp_path, axes={"bandwidth": ["500kbit", "2mbit"], "rtt": ["20ms", "0.1s"]}))
    points = spec.expand()
    assert len(points) == 2 * 2 * 2
    assert {dict(p.values)["bandwidth"] for p in points} == {0.5, 2.0}
    assert {dict(p.values)["rtt"] for p in points} == {20.0, 100.0}
    assert {p.seed for p in points} == {1, 2}
    assert len({p.key for p in points}) == len(points)


def test_points_instead_of_grid(tmp_path):
    spec = load_sweep(write_sweep(tmp_path, points=[{"bandwidth": "5mbit", "model": "vgg16"}], replications=3))
    assert [(dict(p.values), p.seed) for p in spec.expand()] == [
        ({"bandwidth": 5.0, "model": "vgg16"}, s) for s in (1, 2, 3)
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"axes": {"bandwith": [1]}}, "axes.bandwith: unknown axis"),
        ({"axes": {"bandwidth": []}}, "axes.bandwidth: the axis has no values"),
        ({"axes": {"bandwidth": ["20ms"]}}, "unit 'ms' is wrong for a rate (it is a duration)"),
        ({"axes": {"bandwidth": [20]}}, "has no unit"),
        ({"axes": {"rtt": ["-5ms"]}}, "must not be negative"),
        ({"base": {"simulation": "missing.yaml"}}, "base.simulation: missing.yaml does not exist"),
        ({"base": {"notebook": "x"}}, "base: give exactly one of simulation or experiment"),
        ({"replications": 0}, "replications: 0 must be at least 1"),
        ({"points": [{"bandwidth": "5mbit"}]}, "points[0].model: is missing"),
        ({"axes": {"refresh": ["recalibrat"]}}, "axes.refresh[0]: 'recalibrat' is not one of benchmark, recalibrate"),
    ],
)
def test_bad_specs_are_rejected_naming_the_field(tmp_path, change, message):
    with pytest.raises(SweepError, match=pytest.importorskip("re").escape(message)):
        load_sweep(write_sweep(tmp_path, **change))


def test_tidy_table_and_resume(tmp_path):
    spec = load_sweep(write_sweep(tmp_path))
    out = tmp_path / "out"
    first = run_sweep(spec, out, workers=2)
    assert (first.total, first.ran, first.skipped) == (8, 8, 0)
    table = pd.read_parquet(first.results_path)
    # one row per point, seed and policy; axes are columns in canonical units
    assert len(table) == 8 * 4
    assert {"bandwidth_mbps", "model", "seed", "policy", "mean_s", "p95_s"} <= set(table.columns)
    assert table.groupby(["bandwidth_mbps", "model", "seed", "policy"]).size().eq(1).all()
    # a faster uplink never makes the best partition slower
    best = table[table.policy == "best-partition"].groupby(["model", "bandwidth_mbps"]).mean_s.mean()
    for model in ("mobilenetv2", "resnet50"):
        assert best[(model, 50.0)] <= best[(model, 1.0)]
    # re-running skips everything; losing two parts re-runs exactly those
    again = run_sweep(spec, out, workers=2)
    assert (again.ran, again.skipped) == (0, 8)
    parts = sorted((out / "parts").glob("*.parquet"))
    for p in parts[:2]:
        p.unlink()
    third = run_sweep(spec, out, workers=1)
    assert (third.ran, third.skipped) == (2, 6)
    pd.testing.assert_frame_equal(_comparable(pd.read_parquet(third.results_path)), _comparable(table))


def _comparable(table: pd.DataFrame) -> pd.DataFrame:
    """Drop the simulator's own timings (they differ run to run) and fix the row order."""
    table = table.drop(columns=["wall_s", "requests_per_s"])
    return table.sort_values(["point_key", "policy"]).reset_index(drop=True)


def test_interrupted_sweep_keeps_finished_points(tmp_path):
    spec_path = write_sweep(tmp_path, axes={"bandwidth": {"values": [1, 2, 5, 10, 20, 50], "unit": "mbit"},
                                            "model": ["mobilenetv2", "resnet50", "vgg16"]}, replications=2)
    out = tmp_path / "out"
    proc = subprocess.Popen([console_script("testbed"), "sweep", str(spec_path), "--out", str(out),
                             "--workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "parts").glob("*.parquet"))) < 3:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=60)
    kept = len(list((out / "parts").glob("*.parquet")))
    assert 3 <= kept < 36
    assert len(pd.read_parquet(out / "results.parquet").point_key.unique()) >= 3
    done = subprocess.run([console_script("testbed"), "sweep", str(spec_path), "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"{kept} already done" in done.stdout
    assert len(pd.read_parquet(out / "results.parquet").point_key.unique()) == 36


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dask_cluster(tmp_path):
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = str(Path(sys.executable).parent / "dask")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    time.sleep(1.5)
    for _ in range(2):
        procs.append(subprocess.Popen([dask, "worker", address, "--nworkers", "1", "--nthreads", "1",
                                       "--no-dashboard", "--host", "127.0.0.1"], cwd=tmp_path, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    from distributed import Client

    with Client(address, timeout="30s") as client:
        client.wait_for_workers(2, timeout=60)
    yield address
    for p in reversed(procs):
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


def test_dask_gives_the_same_table_as_local(tmp_path, dask_cluster):
    spec = load_sweep(write_sweep(tmp_path))
    local = run_sweep(spec, tmp_path / "local", workers=2)
    remote = run_sweep(spec, tmp_path / "dask", executor="dask", scheduler=dask_cluster)
    assert remote.ran == 8
    pd.testing.assert_frame_equal(_comparable(pd.read_parquet(local.results_path)),
                                  _comparable(pd.read_parquet(remote.results_path)))


def run_cli(*args):
    return subprocess.run([console_script("testbed"), *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("change", "extra", "message"),
    [
        ({"axes": {"bandwith": [1]}}, [], "unknown axis"),
        ({"axes": {"model": []}}, [], "has no values"),
        ({"axes": {"bandwidth": ["3 parsecs"]}}, [], "unknown unit 'parsecs' for a rate"),
        ({"base": {"simulation": "nope.yaml"}}, [], "does not exist"),
        ({}, ["--executor", "dask", "--scheduler", "tcp://127.0.0.1:9"], "unreachable"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2_before_running(tmp_path, change, extra, message):
    spec = write_sweep(tmp_path, **change)
    result = run_cli("sweep", str(spec), "--out", str(tmp_path / "out"), *extra)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "out" / "parts").exists() or not list((tmp_path / "out" / "parts").iterdir())


def test_cli_runs_sweep_and_report(tmp_path):
    spec = write_sweep(tmp_path, replications=1)
    result = run_cli("sweep", str(spec), "--out", str(tmp_path / "out"), "--report")
    assert result.returncode == 0, result.stderr
    assert "4 points ran" in result.stdout
    assert (tmp_path / "out" / "report.html").read_text().startswith("<!doctype html>")


def test_sweep_spec_from_dict_rejects_non_mapping(tmp_path):
    with pytest.raises(SweepError, match="must be a mapping"):
        sweep_from_dict([1, 2], tmp_path)


def test_cli_relative_out_folder(tmp_path):
    spec = write_sweep(tmp_path, replications=1, axes={"bandwidth": ["5mbit"], "model": ["mobilenetv2"]})
    result = subprocess.run([console_script("testbed"), "sweep", str(spec), "--out", "rel-out"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    table = pd.read_parquet(tmp_path / "rel-out" / "results.parquet")
    assert table["error"].isna().all(), table["error"].tolist()


def test_the_refresh_axis_sets_how_periodic_and_adaptive_policies_refresh(tmp_path):
    from testbed.sweep.axes import Applier, Target, apply_simulation

    doc = {"policies": [{"kind": "oracle"}, {"kind": "periodic", "period_s": 60}, {"kind": "adaptive"}]}
    applier = Applier(doc, tmp_path)
    apply_simulation(applier, "refresh", "recalibrate", Target())
    assert [p.get("refresh") for p in applier.doc["policies"]] == [None, "recalibrate", "recalibrate"]
    with pytest.raises(SweepError, match="no periodic or adaptive policy"):
        apply_simulation(Applier({"policies": [{"kind": "oracle"}]}, tmp_path), "refresh", "benchmark", Target())
