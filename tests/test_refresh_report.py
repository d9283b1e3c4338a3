"""The period-regret report draws regret against overhead, one line per refresh mode (issue 13 point 5)."""

from __future__ import annotations

import itertools

import pandas as pd

from scission.plots import record_figures
from testbed.report import build_report


def _table() -> pd.DataFrame:
    rows = []
    for period, refresh, seed in itertools.product((30.0, 120.0, 600.0), ("benchmark", "recalibrate"), (1, 2)):
        cost = {"benchmark": 10.0, "recalibrate": 1.0}[refresh]
        for policy, kind in (("oracle", "oracle"), ("periodic", "periodic")):
            overhead = cost / period if kind == "periodic" else 0.0
            regret = 0.0 if kind == "oracle" else 0.02 + overhead + 3 / period + 0.001 * seed
            rows.append({"benchmark_period_s": period, "refresh": refresh, "seed": seed, "policy": policy,
                         "kind": kind, "mean_s": 1 + regret, "regret": regret, "overhead_fraction": overhead,
                         "error": None})
    return pd.DataFrame(rows)


def test_the_report_shows_one_regret_against_overhead_line_per_refresh_mode(tmp_path):
    path = tmp_path / "results.parquet"
    _table().to_parquet(path)
    with record_figures() as figures:
        page = build_report(path, tmp_path / "report.html")
    tradeoff = [f for f in figures if any("along" in s for s in f.series)]
    assert len(tradeoff) == 1
    series = {s["label"]: s for s in tradeoff[0].series}
    assert set(series) == {"benchmark", "recalibrate"}
    for label, s in series.items():
        assert s["along"] == [30.0, 120.0, 600.0] and s["n"] == [2, 2, 2]
        cost = {"benchmark": 10.0, "recalibrate": 1.0}[label]
        assert s["x"] == [cost / 30, cost / 120, cost / 600]
    assert "regret against refresh overhead" in page.read_text()
