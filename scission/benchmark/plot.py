"""Per-block latency bars with each block's output size on a second axis (matplotlib, imported lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from scission.plots import (
    DOUBLE_COLUMN_IN,
    PALETTE,
    SINGLE_COLUMN_IN,
    SMALL_FONT_PT,
    pyplot,
    save_figure_all,
)
from scission.profiles import ModelProfile, Resource


def plot_model(model: ModelProfile, resource: Resource, out_dir: str | Path,
               formats: Sequence[str] | None = None) -> list[Path]:
    """Write ``<out_dir>/<tier>-<name>-<model>.png`` (and the other ``formats``): median latency (ms) bars on a
    linear axis, p95 whiskers, output size (kB) as a line on its own log axis."""
    plt = pyplot()

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    blocks = model.blocks
    positions = list(range(len(blocks)))
    median_ms = [(b.latency.median_s if b.latency.median_s is not None else b.latency.mean_s) * 1000
                 for b in blocks]
    p95_ms = [(b.latency.p95_s or b.latency.typical_s) * 1000 for b in blocks]
    whisker = [[0.0] * len(blocks), [max(p - m, 0.0) for p, m in zip(p95_ms, median_ms, strict=True)]]
    size_kb = [b.output_bytes / 1000 for b in blocks]
    labels = [str(b.first_layer) if b.first_layer == b.last_layer else f"{b.first_layer}-{b.last_layer}"
              for b in blocks]

    width = SINGLE_COLUMN_IN if len(blocks) <= 12 else DOUBLE_COLUMN_IN
    fig, ax = plt.subplots(figsize=(width, 2.8))
    ax.bar(positions, median_ms, yerr=whisker, color=PALETTE[0], ecolor="#808080", capsize=1.5,
           label="median latency (whisker: p95)")
    ax.set_ylabel("block latency, median (ms)", color=PALETTE[0])
    ax.set_xlabel("block (Keras layer range)")
    step = max(1, len(blocks) // 40)  # at most ~40 readable tick labels at 7 pt
    ax.set_xticks(positions[::step], labels[::step], rotation=90, fontsize=SMALL_FONT_PT)
    twin = ax.twinx()
    twin.plot(positions, size_kb, color=PALETTE[1], marker="s", linestyle="--", label="output size")
    twin.set_ylabel("block output (kB, log scale)", color=PALETTE[1])
    twin.set_yscale("log")
    ratio = model.run.get("block_sum_ratio")
    suffix = f", block sum / whole = {ratio:.2f}" if isinstance(ratio, (int, float)) else ""
    ax.set_title(f"{model.model} on {resource.label} ({len(blocks)} blocks{suffix})")
    fig.tight_layout()
    path = out / f"{resource.label}-{model.model}.png"
    return save_figure_all(fig, path, formats=formats)
