"""The figures of a run (median relative error, Spearman, regret) and its markdown summary.

Over the configurations of one (topology, model) that have a measured latency. The headline figures are
those of the prediction a user has before measuring: the profiles benchmarked in place (``predicted_s``).
With compute-speed probes, ``speed_adjusted`` keeps, beside them, the figures of the prediction rescaled to
each node's speed next to the measurement (``predicted_adjusted_s``): a diagnostic of how much the nodes'
speed drifted, never the headline, since nobody has those probes before deploying.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

__all__ = ["figure_rows", "render_markdown", "summarise"]


def _fmt(value: float | None, pct: bool = False) -> str:
    return "n/a" if value is None else (f"{value * 100:.1f}%" if pct else f"{value:.3f}")


def figure_rows(summary: Sequence[Mapping[str, Any]]) -> list[str]:
    """Markdown rows (topology, model, configurations, prediction, error, Spearman, regret) of summaries: the
    headline (profile) row, with a speed-adjusted diagnostic row under it where the run probed speeds.

    Summaries written before issue 13 headlined the speed-adjusted figures and kept ``profile_only`` beside
    them; they are shown the same way (profile first)."""
    rows = []
    for s in summary:
        head, diagnostic = s, s.get("speed_adjusted")
        if "profile_only" in s:  # an older summary: its top level is the speed-adjusted prediction
            head, diagnostic = s["profile_only"], s
        rows.append(f"| {s['topology']} | {s['model']} | {s['configurations']} | profile | "
                    f"{_fmt(head['median_rel_error'], True)} | {_fmt(head['spearman'])} | "
                    f"{_fmt(head['regret'], True)} |")
        if diagnostic is not None:
            rows.append(f"| | | | speed-adjusted (diagnostic) | {_fmt(diagnostic['median_rel_error'], True)} | "
                        f"{_fmt(diagnostic['spearman'])} | {_fmt(diagnostic['regret'], True)} |")
    return rows


def _figures(done: pd.DataFrame, predicted: str) -> dict[str, Any]:
    rel = (done[predicted] - done["measured_s"]).abs() / done["measured_s"]
    # Spearman = Pearson on ranks (average ranks for ties); no SciPy needed.
    spearman = done[predicted].rank().corr(done["measured_s"].rank()) if len(done) >= 2 else None
    best_predicted = done.loc[done[predicted].idxmin()]
    return {
        "median_rel_error": float(rel.median()),
        "spearman": None if spearman is None or math.isnan(spearman) else float(spearman),
        "regret": float(best_predicted["measured_s"] / done["measured_s"].min() - 1),
        "predicted_best": str(best_predicted["config"]),
    }


def summarise(configs: pd.DataFrame) -> dict[str, Any]:
    """The three figures for one (topology, model), over configurations with a measured latency."""
    done = configs.dropna(subset=["measured_s"])
    if len(done) == 0:
        return {"configurations": 0, "median_rel_error": None, "spearman": None, "regret": None}
    adjusted = "predicted_adjusted_s" in done.columns and done["predicted_adjusted_s"].notna().all()
    out: dict[str, Any] = {"configurations": int(len(done)), "prediction": "profile"}
    out.update(_figures(done, "predicted_s"))
    out["measured_best"] = str(done.loc[done["measured_s"].idxmin(), "config"])
    if adjusted:
        out["speed_adjusted"] = _figures(done, "predicted_adjusted_s")
    return out


def render_markdown(name: str, topology: str, requests: int, repeats: int, summary: Sequence[Mapping[str, Any]],
                    configs: Mapping[str, pd.DataFrame], events: Sequence[Mapping[str, Any]],
                    notes: Sequence[str]) -> str:
    """summary.md: the figures, then one table of configurations per model, then events and notes."""
    def seconds(v):
        return "n/a" if v is None or pd.isna(v) else f"{v:.4f}"

    lines = [f"# testbed run: {name}", "",
             f"Topology `{topology}`, {requests} requests per configuration, benchmark repeats {repeats}.", "",
             "| topology | model | configurations | prediction | median rel. error | Spearman | regret |",
             "|---|---|---|---|---|---|---|"]
    lines += figure_rows(summary)
    lines += ["", "Profile: the prediction from the profiles benchmarked in place, before any request (the headline)."]
    if any("speed_adjusted" in s for s in summary):
        lines += ["Speed-adjusted (a diagnostic, not a prediction anyone has before measuring): each computing "
                  "node's share is scaled by the median, over the compute-speed probes taken next to the "
                  "measurements, of probe / the whole pass of its benchmark (`speeds.parquet`)."]
    for model, frame in configs.items():
        lines += ["", f"## {model}", "",
                  "| label | configuration | predicted (s) | speed-adjusted (s) | measured median (s) | ok | failed |",
                  "|---|---|---|---|---|---|---|"]
        for _, r in frame.iterrows():
            lines.append(f"| {r['label']} | `{r['config']}` | {r['predicted_s']:.4f} | "
                         f"{seconds(r.get('predicted_adjusted_s'))} | {seconds(r['measured_s'])} | "
                         f"{r['requests_ok']} | {r['requests_failed']} |")
    if events or notes:
        lines += ["", "## Events and notes", ""]
        lines += [f"- {e['model']} `{e['config']}`: {e['event']}" for e in events]
        lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"
