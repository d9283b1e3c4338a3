"""Result files of a simulation: summary JSON, Parquet tables and plots (matplotlib, Agg backend).

- ``summary.json``: the across-seed summary (what ``testbed simulate --json`` prints).
- ``runs.parquet``: one row per (policy, seed) with every figure, utilisation per node and link included.
- ``timeline.parquet``: mean latency per completion-time window, per policy and seed.
- ``requests.parquet``: one row per request (only with ``records: true``).
- ``device_timeline.parquet``: the same per device (only with several devices).
- ``latency_over_time.png``: latency per policy over time (median over seeds, band: range over seeds; a panel
  per device with several), with the conditions below and changes marked.
- ``latency_cdf.png``: latency CDF per policy (all seeds pooled).
Plots are PNG unless the command's ``--format`` (scission.plots.figure_formats) asks for PDF/SVG too.
"""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

from scission.files import atomic_write_parquet, atomic_write_text
from scission.plots import (
    DOUBLE_COLUMN_IN,
    PALETTE,
    SINGLE_COLUMN_IN,
    figure_paths,
    figure_size,
    note_series,
    pyplot,
    save_figure,
    style_of,
)
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


def _seed_band(frame, x: str = "window_start_s", y: str = "mean_latency_s"):
    """Per window: the median over seeds and the range (min, max) over seeds, with the seeds counted."""
    wide = frame.pivot_table(index=x, columns="seed", values=y, aggfunc="mean").sort_index()
    return wide.index.to_numpy(), wide.median(axis=1).to_numpy(), wide.min(axis=1).to_numpy(), \
        wide.max(axis=1).to_numpy(), wide.shape[1]


def plot_timeline_frames(timeline, path: Path, title: str, device_timeline=None, changes=(), end_s: float = 0.0,
                         conditions_seed=None, formats=None) -> Path:
    """Latency over time per policy: median over seeds, band = range over seeds; a panel per device.

    ``timeline``/``device_timeline`` are the frames of timeline.parquet / device_timeline.parquet.
    """
    plt = pyplot()
    frames = [("all devices", timeline)]
    if device_timeline is not None and not device_timeline.empty:
        frames = [(f"device {d}", part) for d, part in device_timeline.groupby("device", sort=True)]
    has_conditions = bool(changes)
    n = len(frames) + (1 if has_conditions else 0)
    ratios = [3] * len(frames) + ([1.4] if has_conditions else [])
    policies = sorted(timeline["policy"].unique())
    width = SINGLE_COLUMN_IN if n <= 2 and len(policies) <= 4 else DOUBLE_COLUMN_IN
    fig, axes = plt.subplots(n, 1, figsize=(width, 1.0 + 1.5 * len(frames) + (1.0 if has_conditions else 0)),
                             sharex=True, squeeze=False, gridspec_kw={"height_ratios": ratios}, layout="constrained")
    seeds = timeline["seed"].nunique()
    for row, (panel, frame) in enumerate(frames):
        ax = axes[row][0]
        for index, policy in enumerate(policies):
            part = frame[frame["policy"] == policy]
            if part.empty:
                continue
            xs, median, lo, hi, n_seeds = _seed_band(part)
            look = style_of(index)
            ax.plot(xs, median, label=policy, color=look["color"], linestyle=look["linestyle"], marker="",
                    linewidth=0.9)
            if n_seeds > 1:
                ax.fill_between(xs, lo, hi, color=look["color"], alpha=0.2, linewidth=0)
            note_series(fig, panel=panel, label=policy, x=list(xs), median=list(median), lo=list(lo), hi=list(hi),
                        seeds=n_seeds)
        ax.set_ylabel("mean latency (s)")
        ax.set_yscale("log")
        ax.set_title(panel if len(frames) > 1 else "", loc="left")
        ax.grid(alpha=0.3, which="both")
    band = f"median over {seeds} seeds, band: range over seeds" if seeds > 1 else "one seed"
    fig.suptitle(textwrap.fill(f"{title}: latency over time ({band})", 60 if width == SINGLE_COLUMN_IN else 110))
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(labels)), title="policy", frameon=False)
    if has_conditions:
        marked = changes if len(changes) <= _MAX_MARKED_CHANGES else []
        for r in range(len(frames)):
            for t, _, _ in marked:
                if t > 0:
                    axes[r][0].axvline(t, color="#808080", linestyle=":", linewidth=0.8)
        low = axes[-1][0]
        series: dict[str, list] = {}
        for t, label, value in changes:
            series.setdefault(label.replace(" bandwidth_mbps", " bandwidth"), []).append((t, value))
        right = None
        has_bandwidth = any(not label.endswith(" load") for label in series)
        bw_index = 0
        for label, points in series.items():
            xs = [p[0] for p in points] + [end_s]
            ys = [p[1] for p in points] + [points[-1][1]]
            if label.endswith(" load"):  # a fraction: its own axis (the bandwidth axis's, if no bandwidth)
                right = right or (low.twinx() if has_bandwidth else low)
                right.step(xs, [y * 100 for y in ys], where="post", linestyle="--", color=PALETTE[1], label=label,
                           marker="")
                right.set_ylabel("background load (%)")
            else:
                look = style_of(bw_index + 2)
                low.step(xs, ys, where="post", label=label, color=look["color"], linestyle=look["linestyle"], marker="")
                bw_index += 1
        if has_bandwidth:
            low.set_ylabel("bandwidth (Mbit/s)")
        low.set_title(f"conditions (seed {conditions_seed})" if conditions_seed is not None else "conditions",
                      loc="left")
        handles, labels = low.get_legend_handles_labels()
        if right is not None and right is not low:
            h2, l2 = right.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
        low.legend(handles, labels, ncol=2, loc="best")
    axes[-1][0].set_xlabel("simulated time (s)")
    return save_figure(fig, path, formats=formats)


def plot_timeline(result: SimulationResult, path: Path, formats=None) -> Path:
    seed = result.spec.seeds[0]
    runs = [r for r in result.runs if r.seed == seed]
    changes = runs[0].changes if runs else []
    end = max((r.summary["sim_time_s"] for r in runs), default=0.0)
    return plot_timeline_frames(result.timeline_frame(), path, result.spec.name, result.device_timeline_frame(),
                                changes, end, seed, formats)


def plot_cdf(result: SimulationResult, path: Path, formats=None) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=figure_size("single"))
    for index, p in enumerate(result.spec.policies):
        pooled = LatencyHistogram()
        for r in result.runs:
            if r.policy == p.name:
                pooled.counts += r.histogram.counts
                pooled.n += r.histogram.n
        if pooled.n:
            x, y = pooled.cdf()
            look = style_of(index)
            ax.step(x, y, where="post", label=p.name, color=look["color"], linestyle=look["linestyle"], marker="")
    ax.set_xscale("log")
    ax.set_xlabel("latency (s)")
    ax.set_ylabel("fraction of requests (CDF)")
    seeds = len(result.spec.seeds)
    ax.set_title(f"{result.spec.name}: latency CDF ({seeds} seed{'s' if seeds != 1 else ''} pooled)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path, formats=formats)


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
    devices = result.device_timeline_frame()
    if devices is not None:
        written.append(atomic_write_parquet(devices, out / "device_timeline.parquet"))
    if plots:
        for name, plot in (("latency_over_time.png", plot_timeline), ("latency_cdf.png", plot_cdf)):
            plot(result, out / name)
            written += figure_paths(out / name)
    return written
