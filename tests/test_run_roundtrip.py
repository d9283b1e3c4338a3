"""A run folder written by the real folder code from a fake run -> `testbed compare` (the real simulator) -> report.

Also: an emulator error in an emulated sweep point is a failed point, and the sweep goes on.
"""

from __future__ import annotations

import pandas as pd
import yaml
from run_fakes import fake_run, write_experiment, write_topology

import testbed.run.runner as runner_module
from emulator.errors import EngineError
from testbed.compare import compare_run, write_compare
from testbed.report import build_report
from testbed.run.folder import read_replay
from testbed.run.spec import load_experiment
from testbed.sweep.points import run_point
from testbed.sweep.runner import run_sweep
from testbed.sweep.spec import load_sweep


def test_a_fake_run_folder_is_compared_and_reported(tmp_path):
    spec = load_experiment(write_experiment(tmp_path, write_topology(tmp_path), requests=4, rounds=2, top_k=2))
    results, _, _ = fake_run(spec, tmp_path / "out")
    replay = read_replay(tmp_path / "out" / "mobilenetv2")
    assert replay.meta_path.name == "replay.json" and replay.requests["ok"].all()
    table = compare_run(tmp_path / "out" / "mobilenetv2", seeds=(1,), min_requests=50)
    measured = results.configs["mobilenetv2"]
    assert set(table["config"]) == set(measured["config"])
    assert (table["requests"] == 4).all()
    # the fake agents time blocks exactly as profiled and 10 ms per hop: the simulator lands near them
    assert (table["simulated_s"] > 0).all() and (table["measured_s"] > 0).all()
    written = write_compare(table, tmp_path / "out" / "mobilenetv2" / "compare")
    assert all(p.exists() for p in written)
    page = build_report(tmp_path / "out")
    html = page.read_text()
    assert "Prediction against measurement" in html and "configs.parquet" in html and "<img" in html


def test_an_old_replay_folder_with_run_json_is_still_read(tmp_path):
    spec = load_experiment(write_experiment(tmp_path, write_topology(tmp_path), requests=2, rounds=1, top_k=1))
    fake_run(spec, tmp_path / "out")
    folder = tmp_path / "out" / "mobilenetv2"
    (folder / "replay.json").rename(folder / "run.json")
    assert read_replay(folder).meta_path.name == "run.json"


def _engine_down(topology, **kwargs):
    raise EngineError("the Docker Engine went away")


def test_an_engine_error_in_an_emulated_point_is_a_failed_point(tmp_path, monkeypatch):
    monkeypatch.setattr(runner_module.Emulation, "up", staticmethod(_engine_down))
    experiment = write_experiment(tmp_path, write_topology(tmp_path))
    rows = run_point("experiment", str(experiment), {}, {}, {}, 0, str(tmp_path / "work"))
    assert len(rows) == 1 and "the Docker Engine went away" in rows[0]["error"]


def test_the_sweep_goes_on_after_a_failed_emulated_point(tmp_path, monkeypatch):
    monkeypatch.setattr(runner_module.Emulation, "up", staticmethod(_engine_down))
    experiment = write_experiment(tmp_path, write_topology(tmp_path))
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({
        "name": "emulated", "base": {"experiment": str(experiment)},
        "axes": {"bandwidth": {"values": [5, 10], "unit": "mbit"}}, "replications": 1}))
    outcome = run_sweep(load_sweep(tmp_path / "sweep.yaml"), tmp_path / "sweep")
    assert outcome.ran == 2 and outcome.failed == 2
    table = pd.read_parquet(outcome.results_path)
    assert table["error"].str.contains("Docker Engine went away").all()
