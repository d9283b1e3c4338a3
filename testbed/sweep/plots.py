"""Line plots and heatmaps of a tidy results table, with 95% confidence intervals over replications."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from scission.plots import pyplot, save_figure
from testbed.sim.stats import mean_ci
from testbed.sweep.axes import AXES

AXIS_COLUMNS = {a.column for a in AXES.values()} | {"policy"}
NOT_METRICS = {"seed", "point_key", "error", "kind", "unstable_reason", "final_config", "stable"}
PREFERRED_METRICS = ["mean_s", "p95_s", "regret", "overhead_fraction", "measured_s", "predicted_s", "p99_s",
                     "throughput_per_s", "repartitions", "bytes_transferred"]


def axis_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c in AXIS_COLUMNS]


def metric_columns(table: pd.DataFrame) -> list[str]:
    numeric = [c for c in table.columns if c not in AXIS_COLUMNS and c not in NOT_METRICS
               and pd.api.types.is_numeric_dtype(table[c]) and not c.startswith(("link_", "node_"))]
    # A metric that never changes (or is never set) says nothing on a plot.
    varying = [c for c in numeric if table[c].notna().any() and table[c].nunique(dropna=True) > 1]
    ordered = [m for m in PREFERRED_METRICS if m in varying]
    return ordered + [m for m in varying if m not in ordered]


def summarise(table: pd.DataFrame, by: list[str], metric: str) -> pd.DataFrame:
    """Mean and CI half-width of ``metric`` over replications for each group."""
    rows = []
    for key, group in table.groupby(by, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        mean, half = mean_ci(group[metric].astype(float).tolist())
        rows.append({**dict(zip(by, key, strict=True)), "mean": mean, "ci95": half, "n": len(group)})
    return pd.DataFrame(rows)


def line_plot(table: pd.DataFrame, x: str, metric: str, path: str | Path, hue: str | None = None,
              facet: str | None = None, log_x: bool | None = None) -> Path:
    """``metric`` against axis ``x``, one line per ``hue`` value, one panel per ``facet`` value; CI bands."""
    plt = pyplot()
    facets = sorted(table[facet].dropna().unique().tolist()) if facet else [None]
    cols = min(4, len(facets))
    rows = math.ceil(len(facets) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False, sharex=True)
    for index, value in enumerate(facets):
        ax = axes[index // cols][index % cols]
        part = table if facet is None else table[table[facet] == value]
        by = [hue, x] if hue else [x]
        stats = summarise(part, by, metric)
        for label, line in (stats.groupby(hue, sort=True) if hue else [(metric, stats)]):
            line = line.sort_values(x)
            ax.plot(line[x], line["mean"], marker="o", markersize=3, label=str(label))
            ax.fill_between(line[x], line["mean"] - line["ci95"], line["mean"] + line["ci95"], alpha=0.2)
        if log_x if log_x is not None else (pd.api.types.is_numeric_dtype(table[x]) and table[x].min() > 0
                                            and table[x].max() / table[x].min() >= 20):
            from matplotlib.ticker import FixedLocator, NullLocator

            ax.set_xscale("log")
            ticks = sorted(table[x].dropna().unique())
            ax.xaxis.set_major_locator(FixedLocator(ticks))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xticklabels([f"{t:g}" for t in ticks], fontsize=7)
        ax.set_title(f"{facet} = {value}" if facet else metric, fontsize=9)
        ax.set_xlabel(x)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    for index in range(len(facets), rows * cols):
        axes[index // cols][index % cols].set_visible(False)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if hue and handles:
        fig.legend(handles, labels, loc="upper center", ncol=min(6, len(labels)), fontsize=8, title=hue)
    fig.tight_layout(rect=(0, 0, 1, 0.86 if hue else 1))
    return save_figure(fig, path, dpi=100)


def heatmap(table: pd.DataFrame, x: str, y: str, metric: str, path: str | Path, title: str = "") -> Path:
    """Mean of ``metric`` over replications on an (x, y) grid, values written in the cells."""
    plt = pyplot()
    stats = summarise(table, [y, x], metric)
    grid = stats.pivot(index=y, columns=x, values="mean")
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(grid.columns), 1.0 + 0.35 * len(grid.index)))
    image = ax.imshow(grid.values, aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(grid.columns)))
    ax.set_xticklabels([f"{c:g}" if isinstance(c, float) else str(c) for c in grid.columns], fontsize=8)
    ax.set_yticks(range(len(grid.index)))
    ax.set_yticklabels([str(i) for i in grid.index], fontsize=8)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    for (i, j), value in pd.DataFrame(grid.values).stack().items():
        ax.text(j, i, f"{value:.3g}", ha="center", va="center", fontsize=6, color="white")
    fig.colorbar(image, ax=ax, label=metric)
    ax.set_title(title or metric, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)
