"""Plots of a `testbed run`: predicted against measured latency, and where each configuration's time goes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from scission.plots import (
    DOUBLE_COLUMN_IN,
    MARKERS,
    PALETTE,
    SINGLE_COLUMN_IN,
    TIER_COLOURS,
    TRANSFER_COLOUR,
    pyplot,
    save_figure,
)

__all__ = ["best_prediction", "plot_breakdown", "plot_predicted_vs_measured"]


def best_prediction(configs: pd.DataFrame) -> pd.Series:
    """The speed-adjusted prediction where the run probed node speeds, else the profile's (a diagnostic)."""
    if "predicted_adjusted_s" in configs.columns:
        return configs["predicted_adjusted_s"].fillna(configs["predicted_s"])
    return configs["predicted_s"]


def plot_predicted_vs_measured(configs: pd.DataFrame, path: Path) -> Path:
    """Filled markers: the prediction the figures use (the profiles'); hollow: speed-adjusted, where probed."""
    plt = pyplot()
    done = configs.dropna(subset=["measured_s"]).assign(best_s=lambda f: best_prediction(f))
    adjusted = "predicted_adjusted_s" in done.columns and done["predicted_adjusted_s"].notna().any()
    fig, ax = plt.subplots(figsize=(SINGLE_COLUMN_IN, SINGLE_COLUMN_IN))
    for index, (model, part) in enumerate(done.groupby("model")):
        colour, marker = PALETTE[index % len(PALETTE)], MARKERS[index % len(MARKERS)]
        ax.scatter(part["predicted_s"], part["measured_s"], label=model, s=18, color=colour, marker=marker)
        if adjusted:
            ax.scatter(part["best_s"], part["measured_s"], s=18, facecolors="none", marker=marker,
                       edgecolors=colour, label=f"{model} (speed-adjusted)")
        for _, r in part.iterrows():
            ax.annotate(r["label"], (r["predicted_s"], r["measured_s"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    lo = min(done["best_s"].min(), done["predicted_s"].min(), done["measured_s"].min()) * 0.8
    hi = max(done["best_s"].max(), done["predicted_s"].max(), done["measured_s"].max()) * 1.2
    ax.plot([lo, hi], [lo, hi], color="#808080", linestyle="--", marker="", linewidth=1,
            label="predicted = measured")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("predicted latency (s), from the profiles")
    ax.set_ylabel("measured median latency (s)")
    ax.set_title("predicted against measured, per configuration")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_breakdown(hops: pd.DataFrame, configs: pd.DataFrame, path: Path) -> Path:
    """Mean compute per node and transfer into each node, stacked, per configuration; predicted as a marker."""
    plt = pyplot()
    mean = hops.groupby(["config", "hop", "node"], as_index=False)[["compute_s", "transfer_in_s"]].mean()
    order = list(configs["config"])
    fig, ax = plt.subplots(figsize=(SINGLE_COLUMN_IN if len(order) <= 4 else DOUBLE_COLUMN_IN, 2.8))
    # one colour per tier, in tier order (the configs' <tier>_node columns follow it), as scission's plots
    tiers = [c.removesuffix("_node") for c in configs.columns if c.endswith("_node")]
    colours = {}
    for index, tier in enumerate(tiers):
        for node in configs[f"{tier}_node"].dropna():
            colours.setdefault(str(node), TIER_COLOURS[index % len(TIER_COLOURS)])
    for x, cid in enumerate(order):
        bottom = 0.0
        for _, h in mean[mean["config"] == cid].sort_values("hop").iterrows():
            if h["hop"] > 0 and pd.notna(h["transfer_in_s"]):
                ax.bar(x, h["transfer_in_s"], bottom=bottom, color=TRANSFER_COLOUR, edgecolor="#000000",
                       linewidth=0.4, hatch="//")
                bottom += h["transfer_in_s"]
            ax.bar(x, h["compute_s"], bottom=bottom, color=colours.get(h["node"], PALETTE[-2]),
                   edgecolor="#000000", linewidth=0.4)
            bottom += h["compute_s"]
    predicted = configs["predicted_s"].set_axis(configs["config"])  # the headline: the profiles' prediction
    ax.scatter(range(len(order)), [predicted[c] for c in order], marker="_", s=400, color="#000000", zorder=3)
    labels = [f"{lab}\n{cid}" for lab, cid in zip(configs["label"], order, strict=True)]
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels(labels, fontsize=7, rotation=20, ha="right")
    ax.set_ylabel("latency, mean over requests (s)")
    from matplotlib.patches import Patch

    handles = [Patch(color=c, label=f"{n} compute") for n, c in colours.items()]
    handles += [Patch(facecolor=TRANSFER_COLOUR, edgecolor="#000000", hatch="//", label="transfer (one way)"),
                Patch(color="#000000", label="predicted from the profiles (bar: -)")]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=2, frameon=False)
    ax.set_title("where the time goes, per configuration")
    fig.tight_layout()
    return save_figure(fig, path)
