"""Result files of a simulation: summary JSON, Parquet tables and plots (matplotlib, Agg backend).

- ``summary.json``: the across-seed summary (what ``testbed simulate --json`` prints).
- ``runs.parquet``: one row per (policy, seed) with every figure, utilisation per node and link included.
- ``timeline.parquet``: mean latency per completion-time window, per policy and seed.
- ``requests.parquet``: one row per request (only with ``records: true``).
- ``latency_over_time.png``: latency per policy over time, with the conditions below and changes marked.
- ``latency_cdf.png``: latency CDF per policy (all seeds pooled).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from scission.files import atomic_write_parquet, atomic_write_text
from scission.plots import pyplot, save_figure
from testbed.sim.runner import SimulationResult
from testbed.sim.stats import LatencyHistogram

__all__ = ["plot_cdf", "plot_timeline", "to_jsonable", "write_outputs"]

_MAX_MARKED_CHANGES = 40


def to_jsonable(value):
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def plot_timeline(result: SimulationResult, path: Path) -> Path:
    plt = pyplot()
    seed = result.spec.seeds[0]
    runs = [r for r in result.runs if r.seed == seed]
    changes = runs[0].changes if runs else []
    has_conditions = bool(changes)
    fig, axes = plt.subplots(2 if has_conditions else 1, 1, figsize=(9, 6 if has_conditions else 4), sharex=True,
                             squeeze=False, gridspec_kw={"height_ratios": [3, 1]} if has_conditions else None)
    ax = axes[0][0]
    for r in runs:
        if r.timeline:
            t, m, _ = zip(*r.timeline, strict=True)
            ax.plot(t, m, label=r.policy, linewidth=1.2)
    ax.set_ylabel("mean latency (s)")
    ax.set_yscale("log")
    ax.set_title(f"{result.spec.name}: latency over time (seed {seed})")
    ax.legend(fontsize=8, ncol=2)
    if has_conditions:
        marked = changes if len(changes) <= _MAX_MARKED_CHANGES else []
        for t, _, _ in marked:
            if t > 0:
                ax.axvline(t, color="grey", linestyle=":", linewidth=0.8)
        low = axes[1][0]
        series: dict[str, list] = {}
        for t, label, value in changes:
            series.setdefault(label, []).append((t, value))
        end = max((r.summary["sim_time_s"] for r in runs), default=0.0)
        right = None
        for label, points in series.items():
            xs = [p[0] for p in points] + [end]
            ys = [p[1] for p in points] + [points[-1][1]]
            if label.endswith(" load"):  # a fraction: its own axis, dashed
                right = right or low.twinx()
                right.step(xs, ys, where="post", linestyle="--", color="tab:red", label=label)
                right.set_ylabel("background load")
            else:
                low.step(xs, ys, where="post", label=label)
        low.set_ylabel("bandwidth (Mbit/s)")
        low.set_xlabel("simulated time (s)")
        handles, labels = low.get_legend_handles_labels()
        if right is not None:
            h2, l2 = right.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
        low.legend(handles, labels, fontsize=8)
    else:
        ax.set_xlabel("simulated time (s)")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_cdf(result: SimulationResult, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for p in result.spec.policies:
        pooled = LatencyHistogram()
        for r in result.runs:
            if r.policy == p.name:
                pooled.counts += r.histogram.counts
                pooled.n += r.histogram.n
        if pooled.n:
            x, y = pooled.cdf()
            ax.step(x, y, where="post", label=p.name)
    ax.set_xscale("log")
    ax.set_xlabel("latency (s)")
    ax.set_ylabel("fraction of requests")
    ax.set_title(f"{result.spec.name}: latency CDF per policy (all seeds)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def write_outputs(result: SimulationResult, out_dir: str | Path, plots: bool = True) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    written.append(atomic_write_text(out / "summary.json",
                                     json.dumps(to_jsonable(result.summary), indent=2, sort_keys=True) + "\n"))
    written.append(atomic_write_parquet(result.runs_frame(), out / "runs.parquet"))
    written.append(atomic_write_parquet(result.timeline_frame(), out / "timeline.parquet"))
    requests = result.requests_frame()
    if requests is not None:
        written.append(atomic_write_parquet(requests, out / "requests.parquet"))
    if plots:
        written.append(plot_timeline(result, out / "latency_over_time.png"))
        written.append(plot_cdf(result, out / "latency_cdf.png"))
    return written
