"""Figures for papers (issue 12, points 4 and 5), asserted on the figures the commands really produce.

Every figure: written as PNG, PDF and SVG on request (valid headers); Okabe–Ito colours from the
house style; no axes without data; no bars on a log axis; axis labels with a unit; fonts ≥ 7 pt and
at most a double column wide. Sweep plots: never an average over an axis they do not show, and
intervals over replications only.
"""

from __future__ import annotations

import re
import subprocess

import pandas as pd
import pytest
import yaml
from conftest import LEGACY_DIR, REPO, console_script
from hypothesis import given, settings
from hypothesis import strategies as st

from scission.plots import (
    DOUBLE_COLUMN_IN,
    NEUTRALS,
    PALETTE,
    SMALL_FONT_PT,
    TRANSFER_COLOUR,
    FigureSummary,
    format_value,
    record_figures,
)

ALLOWED = {c.upper() for c in PALETTE + NEUTRALS + [TRANSFER_COLOUR]}
UNIT = re.compile(r"[(\[][^)\]]+[)\]]")


def assert_house_style(fig: FigureSummary) -> None:
    assert fig.width_in <= DOUBLE_COLUMN_IN + 0.01, fig.width_in
    assert fig.min_font_pt >= SMALL_FONT_PT, fig.min_font_pt
    assert fig.axes, fig.paths
    for ax in fig.axes:
        assert ax.has_data, f"{fig.paths}: empty axes {ax.title!r}"
        if "log" in (ax.xscale, ax.yscale):
            assert ax.bars == 0, f"{fig.paths}: bars on a log axis ({ax.title!r}, {ax.ylabel!r})"
        for label in (ax.xlabel, ax.ylabel):
            if label:
                assert UNIT.search(label), f"{fig.paths}: axis label without a unit: {label!r}"
        assert ax.colours <= ALLOWED, f"{fig.paths}: colours outside the house palette: {ax.colours - ALLOWED}"


def assert_valid_files(paths) -> None:
    suffixes = {p.suffix for p in paths}
    assert suffixes == {".png", ".pdf", ".svg"}, paths
    for p in paths:
        head = p.read_bytes()[:256]
        if p.suffix == ".png":
            assert head.startswith(b"\x89PNG\r\n\x1a\n"), p
        elif p.suffix == ".pdf":
            assert head.startswith(b"%PDF-"), p
        else:
            assert b"<svg" in p.read_bytes()[:2000] and head.lstrip().startswith(b"<?xml"), p


def run(cmd, *args, cwd=REPO):
    return subprocess.run([console_script(cmd), *args], capture_output=True, text=True, cwd=cwd, timeout=300)


# -- scission predict --plot ---------------------------------------------------------------------------

def test_predict_plot_writes_three_formats_stacked_top_k_in_house_style(tmp_path):
    from scission.cli import main

    with record_figures() as figs:
        assert main([ "predict", str(LEGACY_DIR), "network_stats.csv", "vgg19", "--plot", str(tmp_path / "p.png"),
                     "--format", "png,pdf,svg"]) == 0
    (fig,) = figs
    assert_valid_files(fig.paths)
    assert_house_style(fig)
    top = fig.axes[0]
    assert top.xscale == "linear" and top.bars >= 5  # stacked compute/transfer bars of the top 5, linear
    configs = {s["config"] for s in fig.series}
    assert configs == {1, 2, 3, 4, 5}
    kinds = {s["kind"] for s in fig.series}
    assert kinds == {"compute", "transfer"}


def test_predict_plot_format_from_the_suffix_and_bad_format_is_one_line(tmp_path):
    out = run("scission", "predict", str(LEGACY_DIR), "network_stats.csv", "mobilenet", "--plot",
              str(tmp_path / "p.svg"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "p.svg").read_bytes().lstrip().startswith(b"<?xml") and not (tmp_path / "p.png").exists()
    bad = run("scission", "predict", str(LEGACY_DIR), "network_stats.csv", "mobilenet", "--plot",
              str(tmp_path / "q.png"), "--format", "png,jpg")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "jpg" in bad.stderr
    assert "Traceback" not in bad.stderr


# -- scission benchmark plots -----------------------------------------------------------------------------

def test_benchmark_plot_in_house_style_and_all_formats(tmp_path):
    from scission.benchmark.plot import plot_model
    from scission.profile_folder import load_profiles

    profile = next(p for p in load_profiles(LEGACY_DIR) if "resnet50" in p.models)
    with record_figures() as figs:
        paths = plot_model(profile.models["resnet50"], profile.resource, tmp_path, formats=("png", "pdf", "svg"))
    assert_valid_files(paths)
    assert_house_style(figs[0])


# -- testbed simulate: timeline with the seed spread and a panel per device -------------------------------

@pytest.fixture(scope="module")
def multi_device_sim(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sim")
    doc = yaml.safe_load((REPO / "experiments" / "sim-multi-device.yaml").read_text())
    doc["topology"] = str(REPO / "topologies" / "multi-device-edge.yaml")
    doc["profiles"] = str(LEGACY_DIR)
    doc["stop"] = {"duration_s": 120}
    doc["seeds"] = [1, 2, 3]
    doc["policies"] = doc["policies"][:3]
    (tmp / "sim.yaml").write_text(yaml.safe_dump(doc))
    from testbed.cli import main

    with record_figures() as figs:
        assert main(["simulate", str(tmp / "sim.yaml"), "--out", str(tmp / "out"), "--format", "png,pdf,svg"]) == 0
    return tmp / "out", figs


def test_simulation_timeline_has_seed_band_and_a_panel_per_device(multi_device_sim):
    out, figs = multi_device_sim
    timeline = next(f for f in figs if f.paths[0].name == "latency_over_time.png")
    assert_valid_files(timeline.paths)
    assert_house_style(timeline)
    panels = {s["panel"] for s in timeline.series}
    assert panels == {"device device-1", "device device-2", "device device-3"}
    assert all(s["seeds"] == 3 for s in timeline.series)
    assert any(any(h > lo for lo, h in zip(s["lo"], s["hi"], strict=True)) for s in timeline.series)  # a real band
    latency_panels = [a for a in timeline.axes if a.ylabel == "mean latency (s)"]
    assert len(latency_panels) == 3 and all(a.collections > 0 for a in latency_panels)  # fill_between bands
    cdf = next(f for f in figs if f.paths[0].name == "latency_cdf.png")
    assert_valid_files(cdf.paths)
    assert_house_style(cdf)
    assert (out / "device_timeline.parquet").exists()


def test_report_on_a_simulation_folder_is_a_simulation_report(multi_device_sim, tmp_path):
    out, _ = multi_device_sim
    result = run("testbed", "report", str(out), "--out", str(tmp_path / "r.html"))
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "r.html").read_text()
    assert "<title>simulation report" in page and "run report" not in page
    assert "median over 3 seeds" in page and "one panel per device" in page
    assert not re.search(r"\d\.\d+e[+-]\d\d", page)
    from test_report import _browser_check

    seen = _browser_check(tmp_path / "r.html")
    assert seen["errors"] == [] and seen["tables"] >= 2
    assert len(seen["images"]) >= 2 and all(i["ok"] and i["w"] > 100 for i in seen["images"])


def test_report_on_a_folder_of_no_known_kind_is_one_line_exit_2(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    result = run("testbed", "report", str(tmp_path))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert "is not a sweep" in result.stderr and "simulation" in result.stderr


# -- sweeps: never average over an axis the plot does not show ------------------------------------------------

@pytest.fixture(scope="module")
def densenet_sweep(tmp_path_factory):
    """densenet121 with two input sizes whose latencies differ several times at 1 Mbit/s (the issue's case)."""
    from testbed.sweep.runner import run_sweep
    from testbed.sweep.spec import load_sweep

    tmp = tmp_path_factory.mktemp("sweep")
    doc = {"name": "densenet-input", "base": {"simulation": str(REPO / "experiments" / "sim-legacy-partition.yaml")},
           "axes": {"bandwidth": {"values": [1, 10], "unit": "mbit"}, "input_size": ["0.15MB", "0.6MB"],
                    "model": ["densenet121"]},
           "replications": 3}
    (tmp / "s.yaml").write_text(yaml.safe_dump(doc))
    outcome = run_sweep(load_sweep(tmp / "s.yaml"), tmp / "out", workers=2)
    return outcome.results_path, pd.read_parquet(outcome.results_path)


def test_sweep_report_facets_input_size_instead_of_averaging_it(densenet_sweep, tmp_path):
    from testbed.report import build_report

    results, table = densenet_sweep
    truth = table.groupby(["input_size_bytes", "policy", "bandwidth_mbps"])["mean_s"].mean()
    small, large = truth[(150_000.0, "edge-only", 1.0)], truth[(600_000.0, "edge-only", 1.0)]
    assert large > 2 * small  # the two input sizes really differ: averaging them would be visible
    with record_figures() as figs:
        page = build_report(results, tmp_path / "report.html", formats="svg").read_text()
    lines = [f for f in figs if f.paths[0].name.startswith("line-mean_s")]
    assert len(lines) == 1
    drawn = {(s["panel"], s["label"], x): m for s in lines[0].series for x, m in zip(s["x"], s["mean"], strict=True)}
    assert {p for p, _, _ in drawn} == {150_000.0, 600_000.0}  # one panel per input size
    assert drawn[(150_000.0, "edge-only", 1.0)] == pytest.approx(small)
    assert drawn[(600_000.0, "edge-only", 1.0)] == pytest.approx(large)
    pooled = table[(table["policy"] == "edge-only") & (table["bandwidth_mbps"] == 1.0)]["mean_s"].mean()
    assert all(m != pytest.approx(pooled, rel=1e-6) for m in drawn.values())
    assert all(n == 3 for s in lines[0].series for n in s["n"])  # the band's n: replications, not axis values
    for fig in figs:
        assert_house_style(fig)
        assert {p.suffix for p in fig.paths} == {".png", ".svg"}
    assert "model = densenet121" in page  # the fixed axis is named
    assert "95% Student-t interval over 3 replications" in page
    assert "4 points (combinations of bandwidth_mbps, input_size_bytes) × 3 replications (seeds) each" in page
    assert "150 kB" in page and "600 kB" in page and not re.search(r"\d\.\d+e[+-]\d\d", page)
    assert "95% CI over replications" not in page


def test_line_plot_refuses_to_pool_points_of_another_axis(densenet_sweep, tmp_path):
    from testbed.sweep.plots import MixedAxesError, heatmap, line_plot

    _, table = densenet_sweep
    with pytest.raises(MixedAxesError, match="input_size_bytes"):
        line_plot(table, "bandwidth_mbps", "mean_s", tmp_path / "x.png", hue="policy")
    with pytest.raises(MixedAxesError, match="policy"):
        heatmap(table, "bandwidth_mbps", "input_size_bytes", "mean_s", tmp_path / "h.png")


def test_heatmap_names_its_fixed_values_uses_cividis_and_writes_units(densenet_sweep, tmp_path):
    from testbed.sweep.plots import heatmap

    _, table = densenet_sweep
    part = table[table["policy"] == "edge-only"]
    with record_figures() as figs:
        drawn = heatmap(part, "bandwidth_mbps", "input_size_bytes", "mean_s", tmp_path / "h.png")
    assert "policy = edge-only" in drawn.caption and "model = densenet121" in drawn.caption
    assert "3 replications" in drawn.caption
    assert_house_style(figs[0])
    assert figs[0].axes[0].images == 1 and figs[0].axes[0].texts == 4


def test_large_tables_are_paginated_with_the_whole_table_as_csv(densenet_sweep, tmp_path):
    from testbed.report import TABLE_ROWS, _table

    _, table = densenet_sweep
    big = pd.concat([table] * (TABLE_ROWS // len(table) + 2), ignore_index=True)
    text = _table(big, name="results")
    assert f"first {TABLE_ROWS} of {len(big):,} rows" in text
    assert 'download="results.csv" href="data:text/csv;base64,' in text
    assert text.count("<tr") == TABLE_ROWS + 1  # header + shown rows


@pytest.mark.parametrize(("column", "value", "text"), [
    ("input_size_bytes", 150_000.0, "150 kB"), ("mean_s", 1.5612, "1.56 s"), ("mean_s", 0.0174, "17.4 ms"),
    ("bandwidth_mbps", 1.0, "1 Mbit/s"), ("loss_pct", 1.0, "1%"), ("distribution_gain", 1.5, "1.5×"),
    ("bytes_transferred", 181443872.0, "181 MB"), ("anything", 150_000.0, "150,000"),
])
def test_values_print_in_their_units(column, value, text):
    assert format_value(column, value) == text


# -- testbed run and compare plots ------------------------------------------------------------------------

def test_run_and_compare_plots_in_house_style(tmp_path):
    from scission.plots import figure_formats
    from testbed.compare import write_compare
    from testbed.run.plots import plot_breakdown, plot_predicted_vs_measured

    configs = pd.DataFrame({"config": ["a", "b"], "label": ["best", "edge-only"], "model": ["m", "m"],
                            "predicted_s": [0.2, 0.5], "measured_s": [0.25, 0.45],
                            "device_node": ["dev", "dev"], "edge_node": ["edge", "edge"]})
    hops = pd.DataFrame({"config": ["a", "a", "b"], "hop": [0, 1, 0], "node": ["dev", "edge", "edge"],
                         "compute_s": [0.1, 0.05, 0.4], "transfer_in_s": [None, 0.08, None]})
    table = pd.DataFrame({"config": ["a", "b"], "measured_s": [0.25, 0.45], "simulated_s": [0.24, 0.47],
                          "simulated_ci95_s": [0.01, 0.02], "predicted_s": [0.2, 0.5]})
    with record_figures() as figs, figure_formats("png,pdf,svg"):
        plot_predicted_vs_measured(configs, tmp_path / "pvm.png")
        plot_breakdown(hops, configs, tmp_path / "breakdown.png")
        written = write_compare(table, tmp_path / "compare")
    assert len(figs) == 3
    for fig in figs:
        assert_valid_files(fig.paths)
        assert_house_style(fig)
    assert {p.suffix for p in written} >= {".csv", ".parquet", ".png", ".pdf", ".svg"}


def test_emulated_sweep_rows_keep_each_configuration_apart(tmp_path):
    """Emulated points give one row per configuration and seed: the label is a series, never pooled."""
    from testbed.report import build_report

    rows = [{"point_key": f"k{bw}-{seed}", "bandwidth_mbps": bw, "model": "mobilenetv2", "seed": seed,
             "config": f"c-{label}", "label": label, "measured_s": base / bw + 0.01 * seed,
             "predicted_s": base / bw, "error": None}
            for bw in (2.0, 20.0) for seed in (1, 2) for label, base in (("best", 1.0), ("edge-only", 4.0))]
    pd.DataFrame(rows).to_parquet(tmp_path / "results.parquet")
    with record_figures() as figs:
        page = build_report(tmp_path).read_text()
    (line,) = [f for f in figs if f.paths[0].name.startswith("line-measured_s")]
    drawn = {(s["label"], x): m for s in line.series for x, m in zip(s["x"], s["mean"], strict=True)}
    assert drawn[("best", 2.0)] == pytest.approx(0.5 + 0.015)
    assert drawn[("edge-only", 2.0)] == pytest.approx(2.0 + 0.015)
    assert "2 configurations per run" in page and "2 points" in page


def test_a_bad_format_on_a_testbed_command_is_one_line_before_anything_runs(tmp_path):
    sim = REPO / "experiments" / "sim-wired-dip.yaml"
    result = run("testbed", "simulate", str(sim), "--out", str(tmp_path / "out"), "--format", "png,tiff")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "tiff" in result.stderr
    assert not (tmp_path / "out").exists()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1.0, 2.0, 5.0]), st.sampled_from(["a", "b"]),
                          st.one_of(st.floats(0, 100), st.just(float("nan")))), min_size=1, max_size=30))
def test_summarise_is_the_t_interval_over_the_seeds_of_each_point(rows):
    """The vectorised summary equals mean_ci (Student t over the seeds) group by group."""
    import math

    from testbed.sim.stats import mean_ci
    from testbed.sweep.plots import summarise

    table = pd.DataFrame([{"bandwidth_mbps": b, "policy": p, "mean_s": v} for b, p, v in rows])
    table["seed"] = table.groupby(["bandwidth_mbps", "policy"]).cumcount() + 1
    stats = summarise(table, ["bandwidth_mbps", "policy"], "mean_s")
    for _, r in stats.iterrows():
        part = table[(table["bandwidth_mbps"] == r["bandwidth_mbps"]) & (table["policy"] == r["policy"])]
        mean, half = mean_ci(part["mean_s"].tolist())
        assert (math.isnan(mean) and math.isnan(r["mean"])) or math.isclose(mean, r["mean"], rel_tol=1e-9)
        assert (math.isnan(half) and math.isnan(r["ci95"])) or math.isclose(half, r["ci95"], rel_tol=1e-7,
                                                                              abs_tol=1e-9)
        assert r["n"] == part["mean_s"].notna().sum()


def test_log_axes_label_ticks_as_plain_numbers_not_powers_of_ten(tmp_path):
    from scission.plots import pyplot, save_figure

    fig, ax = pyplot().subplots()
    ax.plot([0.6, 3.0], [0.6, 3.0])
    ax.set_xscale("log")
    ax.set_yscale("log")
    save_figure(fig, tmp_path / "log.png")  # the one writer applies the rule, so every producer gets it
    labels = [t.get_text() for t in ax.get_yticklabels(minor=True) + ax.get_yticklabels() if t.get_text()]
    assert labels and all("10^" not in s and "times" not in s and "e" not in s for s in labels), labels
    assert {"1", "2"} <= set(labels)
