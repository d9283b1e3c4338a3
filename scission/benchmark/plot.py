"""Per-block latency bars with each block's output size on a second axis (matplotlib, imported lazily)."""

from __future__ import annotations

from pathlib import Path

from scission.plots import pyplot, save_figure
from scission.profiles import ModelProfile, Resource


def plot_model(model: ModelProfile, resource: Resource, out_dir: str | Path) -> Path:
    """Write ``<out_dir>/<tier>-<name>-<model>.png``: median latency (ms) bars, p95 whiskers, output size (kB)."""
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

    fig, ax = plt.subplots(figsize=(max(6.0, 0.22 * len(blocks) + 2), 4.2))
    ax.bar(positions, median_ms, yerr=whisker, color="tab:blue", ecolor="grey", capsize=1.5, label="median latency")
    ax.set_ylabel("block latency, median (ms)", color="tab:blue")
    ax.set_xlabel("block (Keras layer range)")
    ax.set_xticks(positions, labels, rotation=90, fontsize=6)
    twin = ax.twinx()
    twin.plot(positions, size_kb, color="tab:orange", marker=".", label="output size")
    twin.set_ylabel("block output (kB)", color="tab:orange")
    twin.set_yscale("log")
    ratio = model.run.get("block_sum_ratio")
    suffix = f", block sum / whole = {ratio:.2f}" if isinstance(ratio, (int, float)) else ""
    ax.set_title(f"{model.model} on {resource.label} ({len(blocks)} blocks{suffix})", fontsize=9)
    fig.tight_layout()
    path = out / f"{resource.label}-{model.model}.png"
    return save_figure(fig, path, dpi=120)
