"""Plots of a configuration, and the one place every package picks matplotlib's backend.

matplotlib is imported only when a plot is asked for, so `scission predict` starts fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scission.files import atomic_write
from scission.problem import Configuration, Problem

TIER_COLOURS = ["tab:red", "tab:green", "tab:blue", "tab:purple", "tab:orange", "tab:brown"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend: plots go to files, never a screen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    """Write a figure atomically (the format from the file's suffix) and free it."""
    path = Path(path)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=dpi))
    finally:
        pyplot().close(fig)
    return path


def plot_configuration(problem: Problem, config: Configuration, path: str | Path, title: str = "") -> Path:
    """Per-block latency bars coloured by tier, transfer bars between tiers, log scale (ms)."""
    import matplotlib.patches as mpatches

    plt = pyplot()

    labels: list[str] = []
    values_ms: list[float] = []
    colours: list[str] = []
    handles = []
    previous = None  # resource of the last sender on the data path
    sender_index = 0
    for index, p in enumerate(config.placements):
        colour = TIER_COLOURS[index % len(TIER_COLOURS)]
        if index == 0 or p.runs:
            if previous is not None and p.runs:
                link = problem.network.link(previous, p.resource)
                sender_bytes = config.placements[sender_index].sent_bytes
                labels.append(f"{config.placements[sender_index].tier}->{p.tier}")
                values_ms.append(link.transfer_s(sender_bytes) * 1000)
                colours.append("gold")
            if p.runs:
                cand = problem.candidate(index, p.resource)
                handles.append(mpatches.Patch(color=colour, label=f"{p.tier} ({p.resource})"))
                for b in range(p.first_block, p.last_block + 1):
                    first, last = cand.first_layers[b], cand.last_layers[b]
                    labels.append(f"{first}" if first == last else f"{first}-{last}")
                    values_ms.append(max(cand.latencies_s[b] * 1000, 1e-3))
                    colours.append(colour)
            previous, sender_index = p.resource, index
    handles.append(mpatches.Patch(color="gold", label="transfer"))

    width = max(8.0, 0.28 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(min(width, 40.0), 5.5))
    ax.bar(range(len(values_ms)), values_ms, color=colours)
    ax.set_yscale("log")
    ax.set_ylabel("time (ms, log scale)")
    ax.set_xlabel("block (Keras layer range) / transfer")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=90, fontsize=7)
    ax.legend(handles=handles, loc="upper right")
    heading = title or "best configuration"
    ax.set_title(f"{heading}: {config.latency_s:.4f} s, {config.transfer_bytes / 1e6:.4f} MB sent")
    fig.tight_layout()
    return save_figure(fig, path)
