"""Line plots and heatmaps of a tidy results table; intervals only over replications of one point.

A plot shows some axes (x, hue, facet); every other axis of the table must hold one value in the
rows it is given (the caller splits the table into one figure per value, or the axis was fixed), so
a band is never another axis's spread. :func:`summarise` refuses a group whose rows are not the
replications (distinct seeds) of one point. Each function returns a :class:`Drawn`: the files, the
caption (fixed values and interval method named) and the series it drew, for tests and reports.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from scission.plots import (
    DOUBLE_COLUMN_IN,
    SEQUENTIAL_CMAP,
    SINGLE_COLUMN_IN,
    SMALL_FONT_PT,
    format_value,
    label_of,
    note_series,
    pyplot,
    save_figure_all,
    style_of,
)
from testbed.errors import TestbedError
from testbed.sim.stats import T95
from testbed.sweep.axes import AXES

# a series identity is an axis too: the policy (simulated points) or the configuration's label (emulated)
SERIES_COLUMNS = ("policy", "label")
AXIS_COLUMNS = {a.column for a in AXES.values()} | set(SERIES_COLUMNS)
NOT_METRICS = {"seed", "point_key", "error", "kind", "unstable_reason", "final_config", "stable"}
PREFERRED_METRICS = ["mean_s", "p95_s", "regret", "overhead_fraction", "measured_s", "predicted_s", "p99_s",
                     "throughput_per_s", "repartitions", "bytes_transferred"]
INTERVAL = "95% Student-t interval"


class MixedAxesError(TestbedError, ValueError):
    """A plot was asked to pool rows of different points (another axis's spread is not a CI)."""


@dataclass
class Drawn:
    paths: list[Path]
    caption: str
    series: list[dict[str, Any]] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.paths[0]


def axis_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c in AXIS_COLUMNS]


def metric_columns(table: pd.DataFrame) -> list[str]:
    numeric = [c for c in table.columns if c not in AXIS_COLUMNS and c not in NOT_METRICS
               and pd.api.types.is_numeric_dtype(table[c]) and not c.startswith(("link_", "node_"))]
    # A metric that never changes (or is never set) says nothing on a plot.
    varying = [c for c in numeric if table[c].notna().any() and table[c].nunique(dropna=True) > 1]
    ordered = [m for m in PREFERRED_METRICS if m in varying]
    return ordered + [m for m in varying if m not in ordered]


def varying_axes(table: pd.DataFrame) -> list[str]:
    return [c for c in axis_columns(table) if table[c].nunique(dropna=False) > 1]


def fixed_axes(table: pd.DataFrame) -> dict[str, Any]:
    return {c: table[c].iloc[0] for c in axis_columns(table) if table[c].nunique(dropna=False) == 1}


def describe_fixed(fixed: dict[str, Any]) -> str:
    return ", ".join(f"{label_of(c).split(' (')[0]} = {format_value(c, v)}" for c, v in fixed.items())


def replications_text(counts: Sequence[int]) -> str:
    lo, hi = (min(counts), max(counts)) if counts else (0, 0)
    n = f"{lo}" if lo == hi else f"{lo}–{hi}"
    if hi <= 1:
        return f"one replication per point: no interval (n = {n})"
    return f"mean and {INTERVAL} over {n} replications (seeds) of each point"


def summarise(table: pd.DataFrame, by: list[str], metric: str) -> pd.DataFrame:
    """Mean and t-interval half-width of ``metric`` over the replications (seeds) of each group.

    Raises MixedAxesError when a group holds rows of several points: an axis column not in ``by``
    varies inside it, or a seed repeats.
    """
    others = [c for c in axis_columns(table) if c not in by]
    groups = table.groupby(by, dropna=False, sort=True)
    if others:
        spread = groups[others].nunique(dropna=False)
        mixed_rows = spread[(spread > 1).any(axis=1)]
        if len(mixed_rows):
            key = mixed_rows.index[0]
            mixed = [c for c in others if mixed_rows.iloc[0][c] > 1]
            raise MixedAxesError(f"{metric} at {_where(by, key)} would pool different points "
                                 f"(varying: {', '.join(mixed)}); facet or fix them")
    if "seed" in table and table.duplicated(subset=[*by, "seed"]).any():
        row = table[table.duplicated(subset=[*by, "seed"])].iloc[0]
        raise MixedAxesError(f"{metric} at {_where(by, tuple(row[c] for c in by))} would pool different points "
                             f"(repeated seeds); facet or fix them")
    values = table.assign(_value=table[metric].astype(float)).groupby(by, dropna=False, sort=True)["_value"]
    stats = values.agg(["mean", "std", "count"]).reset_index()
    n = stats["count"].astype(int)
    t = n.map(lambda k: 0.0 if k < 2 else (T95[k - 2] if k - 1 <= len(T95) else 1.96))
    half = (t * stats["std"].fillna(0.0) / n.clip(lower=1) ** 0.5).where(n > 0)
    return pd.DataFrame({**{c: stats[c] for c in by}, "mean": stats["mean"], "ci95": half, "n": n})


def _where(by: list[str], key: Any) -> str:
    key = key if isinstance(key, tuple) else (key,)
    return ", ".join(f"{c}={v}" for c, v in zip(by, key, strict=True))


def _is_log(values: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(values) and values.min() > 0 and values.max() / values.min() >= 20)


def line_plot(table: pd.DataFrame, x: str, metric: str, path: str | Path, hue: str | None = None,
              facet: str | None = None, log_x: bool | None = None, title: str = "",
              formats: Sequence[str] | None = None) -> Drawn:
    """``metric`` against axis ``x``, one line (colour, style, marker) per ``hue``, one panel per ``facet``.

    Every other axis must be constant in ``table`` (else MixedAxesError); the caption names its value.
    """
    plt = pyplot()
    fixed = {c: v for c, v in fixed_axes(table).items() if c not in (x, hue, facet)}
    facets = sorted(table[facet].dropna().unique().tolist()) if facet else [None]
    cols = min(3, len(facets))
    rows = math.ceil(len(facets) / cols)
    width = SINGLE_COLUMN_IN if cols == 1 else DOUBLE_COLUMN_IN
    fig, axes = plt.subplots(rows, cols, figsize=(width, 0.9 + 1.9 * rows), squeeze=False, sharex=True,
                             layout="constrained")
    hues = sorted(table[hue].dropna().unique().tolist()) if hue else [metric]
    counts: list[int] = []
    use_log = log_x if log_x is not None else _is_log(table[x])
    for index, value in enumerate(facets):
        ax = axes[index // cols][index % cols]
        part = table if facet is None else table[table[facet] == value]
        stats = summarise(part, [c for c in (facet, hue, x) if c], metric)
        counts += stats["n"].tolist()
        for h_index, label in enumerate(hues):
            line = (stats[stats[hue] == label] if hue else stats).sort_values(x)
            if line.empty:
                continue
            ax.plot(line[x], line["mean"], label=str(label), **style_of(h_index))
            if (line["n"] > 1).any():
                ax.fill_between(line[x], line["mean"] - line["ci95"], line["mean"] + line["ci95"], alpha=0.2,
                                color=style_of(h_index)["color"], linewidth=0)
            note_series(fig, panel=value, label=label, x=line[x].tolist(), mean=line["mean"].tolist(),
                        ci95=line["ci95"].tolist(), n=line["n"].tolist())
        if use_log:
            from matplotlib.ticker import FixedLocator, NullLocator

            ax.set_xscale("log")
            ticks = sorted(table[x].dropna().unique())
            ax.xaxis.set_major_locator(FixedLocator(ticks))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xticklabels([format_value(x, t).split(" ")[0] for t in ticks])
        if facet:
            ax.set_title(f"{label_of(facet).split(' (')[0]} = {format_value(facet, value)}")
        ax.set_xlabel(label_of(x))
        ax.set_ylabel(label_of(metric))
        ax.tick_params(labelbottom=True)  # every panel keeps its x values (sharex hides them otherwise)
        ax.grid(alpha=0.3)
    for index in range(len(facets), rows * cols):
        fig.delaxes(axes[index // cols][index % cols])
    handles, labels = axes[0][0].get_legend_handles_labels()
    if hue and handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(labels)), title=label_of(hue),
                   frameon=False)
    heading = title or f"{label_of(metric)} against {label_of(x)}"
    if fixed:
        heading += f"; {describe_fixed(fixed)}"
    fig.suptitle(textwrap.fill(heading, 90 if cols > 1 else 55))
    caption = f"{heading}. Line: {replications_text(counts)}."
    series = list(getattr(fig, "_scission_series", []))
    return Drawn(save_figure_all(fig, path, formats=formats), caption, series)


def heatmap(table: pd.DataFrame, x: str, y: str, metric: str, path: str | Path, title: str = "",
            formats: Sequence[str] | None = None) -> Drawn:
    """Mean of ``metric`` over replications on an (x, y) grid, each cell written in the metric's unit."""
    plt = pyplot()
    import matplotlib as mpl

    fixed = {c: v for c, v in fixed_axes(table).items() if c not in (x, y)}
    stats = summarise(table, [y, x], metric)
    grid = stats.pivot(index=y, columns=x, values="mean")
    cell_w = 0.48
    width = min(DOUBLE_COLUMN_IN, max(SINGLE_COLUMN_IN, 1.9 + cell_w * len(grid.columns)))
    fig, ax = plt.subplots(figsize=(width, 1.3 + 0.22 * len(grid.index)), layout="constrained")
    cmap = mpl.colormaps[SEQUENTIAL_CMAP]
    image = ax.imshow(grid.values, aspect="auto", cmap=cmap)
    ax.set_xticks(range(len(grid.columns)), [format_value(x, c) for c in grid.columns])
    ax.set_yticks(range(len(grid.index)), [format_value(y, i) for i in grid.index])
    ax.set_xlabel(label_of(x))
    ax.set_ylabel(label_of(y))
    for (i, j), value in pd.DataFrame(grid.values).stack().items():
        r, g, b, _ = cmap(image.norm(value))
        light = 0.299 * r + 0.587 * g + 0.114 * b > 0.5
        ax.text(j, i, format_value(metric, value), ha="center", va="center", fontsize=SMALL_FONT_PT,
                color="#000000" if light else "#FFFFFF")
    for (yv, xv), v in grid.stack().items():
        note_series(fig, panel=None, label=yv, x=[xv], mean=[v])
    fig.colorbar(image, ax=ax, label=label_of(metric))
    heading = title or label_of(metric)
    if fixed:
        heading += f" ({describe_fixed(fixed)})"
    ax.set_title(textwrap.fill(heading, int(width * 14)))
    n = stats["n"].tolist()
    caption = (f"{heading}. Cells: mean over {min(n)}{'' if min(n) == max(n) else f'–{max(n)}'} replications "
               f"(seeds) of each point.")
    series = list(getattr(fig, "_scission_series", []))
    return Drawn(save_figure_all(fig, path, formats=formats), caption, series)


def tradeoff_plot(table: pd.DataFrame, x_metric: str, y_metric: str, along: str, hue: str, path: str | Path,
                  title: str = "", formats: Sequence[str] | None = None) -> Drawn:
    """``y_metric`` against ``x_metric`` (two metrics, e.g. regret against overhead), one line per ``hue``,
    one point per value of the axis ``along`` (labelled with it), each point the mean over its replications
    with its 95% interval on both metrics. Every other axis must be constant (else MixedAxesError)."""
    plt = pyplot()
    fixed = {c: v for c, v in fixed_axes(table).items() if c not in (along, hue)}
    fig, ax = plt.subplots(figsize=(SINGLE_COLUMN_IN, 2.8), layout="constrained")
    counts: list[int] = []
    for index, label in enumerate(sorted(table[hue].dropna().unique().tolist())):
        part = table[table[hue] == label]
        xs = summarise(part, [along], x_metric).sort_values(along)
        ys = summarise(part, [along], y_metric).sort_values(along)
        counts += ys["n"].tolist()
        style = style_of(index)
        ax.errorbar(xs["mean"], ys["mean"], xerr=xs["ci95"].fillna(0), yerr=ys["ci95"].fillna(0), label=str(label),
                    capsize=2, elinewidth=0.6, **style)
        for x, y, value in zip(xs["mean"], ys["mean"], xs[along], strict=True):
            ax.annotate(format_value(along, value), (x, y), textcoords="offset points", xytext=(4, 3),
                        fontsize=SMALL_FONT_PT, color=style["color"])
        note_series(fig, panel=None, label=label, x=xs["mean"].tolist(), mean=ys["mean"].tolist(),
                    ci95=ys["ci95"].tolist(), n=ys["n"].tolist(), along=xs[along].tolist())
    if _is_log(table[x_metric].where(table[x_metric] > 0).dropna()):
        ax.set_xscale("log")
    ax.set_xlabel(label_of(x_metric))
    ax.set_ylabel(label_of(y_metric))
    ax.grid(alpha=0.3)
    ax.legend(title=label_of(hue), frameon=False)
    heading = title or f"{label_of(y_metric)} against {label_of(x_metric)}, points labelled by {label_of(along)}"
    if fixed:
        heading += f"; {describe_fixed(fixed)}"
    ax.set_title(textwrap.fill(heading, 55))
    caption = f"{heading}. Points: {replications_text(counts)}."
    series = list(getattr(fig, "_scission_series", []))
    return Drawn(save_figure_all(fig, path, formats=formats), caption, series)
