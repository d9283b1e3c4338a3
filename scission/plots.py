"""The house style of every figure, the one writer of figure files, and the plot of `scission predict`.

Every plot module of the three packages takes its colours, line styles, sizes and fonts from here and
writes through :func:`save_figure`, so one change restyles every figure and every command can write
PNG, PDF and SVG alike. matplotlib is imported only when a plot is asked for, so `scission predict`
starts fast.

Formats: a figure is written in the format of its file's suffix, unless a list of formats is given
(``formats=`` or, from a command's ``--format png,pdf,svg``, :func:`figure_formats`); then one file
per format is written next to it, same name, the format's suffix.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scission.errors import ScissionError
from scission.files import atomic_write
from scission.problem import Configuration, Problem

# Okabe & Ito (2008), "Color Universal Design": distinguishable under the common colour-vision
# deficiencies. Yellow last: it is faint on white.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
NEUTRALS = ["#000000", "#808080", "#FFFFFF", "#BFBFBF"]  # reference lines, edges, grids
LINE_STYLES = ["-", "--", "-.", ":"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
HATCHES = ["", "//", "..", "xx", "\\\\", "++"]
SEQUENTIAL_CMAP = "cividis"  # perceptually uniform and readable with colour-vision deficiencies
TIER_COLOURS = PALETTE  # one colour per tier, in tier order
TRANSFER_COLOUR = "#BFBFBF"  # transfers: light grey, hatched, between the tiers' colours

SINGLE_COLUMN_IN = 3.4  # a two-column paper's column
DOUBLE_COLUMN_IN = 7.0  # its full text width
FONT_PT = 8
SMALL_FONT_PT = 7  # the smallest text on any figure

FORMATS = ("png", "pdf", "svg")
_DPI = 200

_formats: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar("figure_formats", default=None)
_recorders: contextvars.ContextVar[list | None] = contextvars.ContextVar("figure_recorders", default=None)


def style() -> dict[str, Any]:
    """matplotlib rc parameters of the house style (fonts ≥ 7 pt, Okabe–Ito colours with line styles)."""
    from cycler import cycler

    n = len(PALETTE)
    return {
        "font.size": FONT_PT,
        "axes.titlesize": FONT_PT,
        "axes.labelsize": FONT_PT,
        "xtick.labelsize": SMALL_FONT_PT,
        "ytick.labelsize": SMALL_FONT_PT,
        "legend.fontsize": SMALL_FONT_PT,
        "legend.title_fontsize": SMALL_FONT_PT,
        "figure.titlesize": FONT_PT + 1,
        "axes.prop_cycle": cycler(color=PALETTE)
        + cycler(linestyle=[LINE_STYLES[i % len(LINE_STYLES)] for i in range(n)])
        + cycler(marker=[MARKERS[i % len(MARKERS)] for i in range(n)]),
        "lines.linewidth": 1.2,
        "lines.markersize": 3.5,
        "image.cmap": SEQUENTIAL_CMAP,
        "axes.grid": False,
        "grid.alpha": 0.3,
        "savefig.bbox": "tight",
        "savefig.pad_inches": 0.02,
        "pdf.fonttype": 42,  # TrueType in PDFs: journals refuse Type 3 fonts
        "svg.fonttype": "none",  # text stays text in SVG
    }


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (plots go to files, never a screen), in the house style."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(style())
    return plt


def figure_size(width: str = "single", height_in: float | None = None) -> tuple[float, float]:
    """(width, height) in inches for a single- or double-column figure."""
    w = SINGLE_COLUMN_IN if width == "single" else DOUBLE_COLUMN_IN
    return w, height_in if height_in is not None else w * 0.72


def style_of(index: int) -> dict[str, Any]:
    """Colour, line style and marker of the ``index``-th series (so overlapping lines stay apart)."""
    return {"color": PALETTE[index % len(PALETTE)], "linestyle": LINE_STYLES[index % len(LINE_STYLES)],
            "marker": MARKERS[index % len(MARKERS)]}


def parse_formats(text: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``"png,pdf,svg"`` → ``("png", "pdf", "svg")``; None stays None (the file's suffix decides)."""
    if text is None:
        return None
    items = text.split(",") if isinstance(text, str) else list(text)
    formats = tuple(dict.fromkeys(i.strip().lower().lstrip(".") for i in items if i.strip()))
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ScissionError(f"--format {text if isinstance(text, str) else ','.join(text)}: "
                            f"give one or more of {', '.join(FORMATS)}, comma-separated")
    return formats


def add_format_option(parser: Any) -> None:
    """The `--format` option every command that writes plots has."""
    parser.add_argument("--format", dest="figure_formats", metavar="png,pdf,svg", type=str, default=None,
                        help="figure formats to write, comma-separated (default: the file's suffix; PNG)")


@contextlib.contextmanager
def figure_formats(formats: str | Sequence[str] | None) -> Iterator[tuple[str, ...] | None]:
    """Every figure saved inside is written in these formats (a command's `--format`)."""
    parsed = parse_formats(formats)
    token = _formats.set(parsed) if parsed is not None else None
    try:
        yield parsed
    finally:
        if token is not None:
            _formats.reset(token)


def active_formats() -> tuple[str, ...] | None:
    """The formats a surrounding :func:`figure_formats` asked for (None: each file's suffix)."""
    return _formats.get()


def figure_paths(path: str | Path, formats: Sequence[str] | None = None) -> list[Path]:
    """The files :func:`save_figure` writes for ``path`` (the path's own format first when listed)."""
    path = Path(path)
    own = path.suffix.lstrip(".").lower() or "png"
    chosen = tuple(formats) if formats is not None else (_formats.get() or (own,))
    ordered = ([own] if own in chosen else []) + [f for f in chosen if f != own]
    return [path if (f == own and path.suffix) else path.with_suffix("." + f) for f in ordered]


def save_figure(fig: Any, path: str | Path, dpi: int = _DPI, formats: Sequence[str] | None = None) -> Path:
    """Write a figure atomically in every chosen format and free it; returns the first file written."""
    return save_figure_all(fig, path, dpi, formats)[0]


def plain_log_ticks(fig: Any) -> None:
    """Log axes label ticks as plain numbers (0.5, 2, 30), not matplotlib's 2x10^0, which papers reject."""
    from matplotlib.ticker import LogFormatter

    class Plain(LogFormatter):  # matplotlib's own rule for which minor ticks get a label, printed with %g
        def _num_to_string(self, x: float, vmin: float, vmax: float) -> str:
            return f"{x:g}"

    for ax in fig.axes:
        for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
            if scale == "log":
                axis.set_major_formatter(Plain(labelOnlyBase=False))
                axis.set_minor_formatter(Plain(labelOnlyBase=False, minor_thresholds=(1.5, 0.5)))


def save_figure_all(fig: Any, path: str | Path, dpi: int = _DPI, formats: Sequence[str] | None = None) -> list[Path]:
    paths = figure_paths(path, formats)
    try:
        plain_log_ticks(fig)
        recorders = _recorders.get()
        if recorders is not None:
            recorders.append(describe(fig, paths))
        for p in paths:
            fmt = p.suffix.lstrip(".").lower()
            if fmt not in FORMATS:
                raise ScissionError(f"{p}: cannot write a figure as {fmt!r}; use one of {', '.join(FORMATS)}")
            atomic_write(p, lambda tmp, fmt=fmt: fig.savefig(tmp, format=fmt, dpi=dpi))
    finally:
        pyplot().close(fig)
    return paths


# -- what a figure shows, for tests and for reports that must say what they plotted ----------------------

@dataclass
class AxisSummary:
    title: str
    xlabel: str
    ylabel: str
    xscale: str
    yscale: str
    lines: int
    bars: int
    collections: int
    images: int
    texts: int
    colours: set[str] = field(default_factory=set)

    @property
    def has_data(self) -> bool:
        return bool(self.lines or self.bars or self.collections or self.images)


@dataclass
class FigureSummary:
    paths: list[Path]
    width_in: float
    height_in: float
    axes: list[AxisSummary]
    min_font_pt: float
    series: list[dict[str, Any]] = field(default_factory=list)  # what the plotting function said it drew


def _hex(colour: Any) -> str | None:
    from matplotlib.colors import to_hex

    try:
        return to_hex(colour, keep_alpha=False).upper()
    except (ValueError, TypeError):
        return None


def describe(fig: Any, paths: list[Path] | None = None) -> FigureSummary:
    """Axes, scales, artists and colours of a figure (twin axes count as their own axes)."""
    from matplotlib.patches import Rectangle
    from matplotlib.text import Text

    axes = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        if getattr(ax, "_colorbar", None) is not None or ax.get_label() == "<colorbar>":
            continue
        bars = [p for p in ax.patches if isinstance(p, Rectangle)]
        lines = [ln for ln in ax.lines if len(ln.get_xdata()) > 0]
        colours = {c for c in (_hex(p.get_facecolor()) for p in bars) if c}
        colours |= {c for c in (_hex(ln.get_color()) for ln in lines) if c}
        for coll in ax.collections:
            for fc in coll.get_facecolor():
                if (c := _hex(fc)) is not None:
                    colours.add(c)
        axes.append(AxisSummary(ax.get_title(), ax.get_xlabel(), ax.get_ylabel(), ax.get_xscale(), ax.get_yscale(),
                                len(lines), len(bars), len(ax.collections), len(ax.images), len(ax.texts), colours))
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_text().strip() and t.get_visible()]
    w, h = fig.get_size_inches()
    return FigureSummary(list(paths or []), float(w), float(h), axes, min(sizes) if sizes else math.inf,
                         list(getattr(fig, "_scission_series", [])))


def note_series(fig: Any, **series: Any) -> None:
    """Record one series a plotting function drew (panel, label, x, y, interval), for tests and captions."""
    if not hasattr(fig, "_scission_series"):
        fig._scission_series = []
    fig._scission_series.append(series)


@contextlib.contextmanager
def record_figures() -> Iterator[list[FigureSummary]]:
    """Collect a :class:`FigureSummary` of every figure saved inside."""
    seen: list[FigureSummary] = []
    token = _recorders.set(seen)
    try:
        yield seen
    finally:
        _recorders.reset(token)


# -- the plot of `scission predict` ---------------------------------------------------------------------

def _segments(problem: Problem, config: Configuration) -> list[tuple[str, str, float]]:
    """(kind, label, seconds) along the data path: each tier's compute and each transfer between tiers."""
    out: list[tuple[str, str, float]] = []
    previous = None
    sender = 0
    for index, p in enumerate(config.placements):
        if not p.runs:
            if index == 0:  # the device sends the input even when it runs no block
                previous, sender = p.resource, 0
            continue
        if previous is not None:
            link = problem.network.link(previous, p.resource)
            out.append(("transfer", f"{config.placements[sender].tier}→{p.tier}",
                        link.transfer_s(config.placements[sender].sent_bytes)))
        out.append(("compute", p.tier, p.compute_s))
        previous, sender = p.resource, index
    return out


def plot_configuration(problem: Problem, config: Configuration, path: str | Path, title: str = "",
                       others: Sequence[Configuration] = ()) -> Path:
    """The best configuration and the next ones: compute per tier and each transfer, stacked (seconds).

    Linear axis, so a bar's length is its time; the per-block times of the best configuration are drawn
    as markers on a log axis below (markers, not bars: a bar on a log axis has no honest base).
    """
    from matplotlib.patches import Patch

    plt = pyplot()
    configs = [config, *others]
    tiers = [p.tier for p in config.placements]
    tier_colour = {t: TIER_COLOURS[i % len(TIER_COLOURS)] for i, t in enumerate(tiers)}
    height = 1.2 + 0.32 * len(configs) + 1.9
    fig, (top, low) = plt.subplots(2, 1, figsize=(DOUBLE_COLUMN_IN if len(configs) > 3 else SINGLE_COLUMN_IN * 1.6,
                                                   height), gridspec_kw={"height_ratios": [max(len(configs), 2), 3]})
    labels = []
    for row, c in enumerate(configs):
        left = 0.0
        for kind, label, seconds in _segments(problem, c):
            colour = tier_colour.get(label, PALETTE[0]) if kind == "compute" else TRANSFER_COLOUR
            top.barh(row, seconds, left=left, color=colour, edgecolor="#000000", linewidth=0.4,
                     hatch="//" if kind == "transfer" else None)
            note_series(fig, panel="configurations", config=row + 1, kind=kind, label=label, seconds=seconds)
            left += seconds
        labels.append(f"#{row + 1}  {c.latency_s:.3g} s")
    top.set_yticks(range(len(configs)), labels)
    top.invert_yaxis()
    top.set_xlabel("latency (s)")
    top.set_title(f"{title or 'configurations'}: top {len(configs)}, compute per tier and transfers")
    handles = [Patch(facecolor=tier_colour[t], edgecolor="#000000", linewidth=0.4, label=f"{t} compute")
               for t in tiers if any(p.tier == t and p.runs for c in configs for p in c.placements)]
    handles.append(Patch(facecolor=TRANSFER_COLOUR, edgecolor="#000000", linewidth=0.4, hatch="//",
                         label="transfer"))
    top.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=min(4, len(handles)),
               frameon=False)
    top.grid(axis="x", alpha=0.3)

    position = 0
    for index, p in enumerate(config.placements):
        if not p.runs:
            continue
        cand = problem.candidate(index, p.resource)
        xs = list(range(position, position + p.last_block - p.first_block + 1))
        ys = [max(cand.latencies_s[b] * 1000, 1e-3) for b in range(p.first_block, p.last_block + 1)]
        low.plot(xs, ys, linestyle="none", marker=MARKERS[index % len(MARKERS)], color=tier_colour[p.tier],
                 label=f"{p.tier} ({p.resource})")
        position += len(xs)
    low.set_yscale("log")
    low.set_xlabel("block of the best configuration (index along the model)")
    low.set_ylabel("block time (ms)")
    low.legend(ncol=min(3, len(tiers)))
    low.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return save_figure(fig, path)


# -- values and axis labels in their units (names carry the unit: `_s`, `_ms`, `_bytes`, `_mbps`, `_pct`) --

_UNIT_OF_SUFFIX = [("_per_s", "1/s"), ("_bytes", "bytes"), ("_mbps", "Mbit/s"), ("_ms", "ms"), ("_pct", "%"),
                   ("_s", "s")]
_NAMES = {"mean": "mean latency", "p50": "median latency", "p95": "p95 latency", "p99": "p99 latency",
          "throughput": "throughput"}
_UNITLESS = {"distribution_gain": "ratio", "overhead_fraction": "fraction", "background_load": "fraction",
             "repartitions": "count", "requests": "count", "regret": "fraction", "n": "count",
             "bytes_transferred": "bytes"}


def unit_of(column: str) -> str | None:
    """The unit a column's name carries (None for a name such as ``model`` or ``policy``)."""
    if column in _UNITLESS:
        return _UNITLESS[column]
    for suffix, unit in _UNIT_OF_SUFFIX:
        if column.endswith(suffix):
            return unit
    return None


def label_of(column: str) -> str:
    """``mean_s`` → ``mean (s)``, ``input_size_bytes`` → ``input size (bytes)``."""
    unit = unit_of(column)
    name = column
    for suffix, _ in _UNIT_OF_SUFFIX:
        if unit is not None and column.endswith(suffix):
            name = column[: -len(suffix)]
            break
    name = _NAMES.get(name, name.replace("_", " "))
    return f"{name} ({unit})" if unit else name


def _plain(value: float) -> str:
    """Three significant figures, never in e-notation."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    digits = max(0, 2 - int(math.floor(math.log10(abs(value)))))
    text = f"{value:,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _scaled(value: float, steps: Sequence[tuple[float, str]]) -> str:
    for factor, unit in steps:
        if abs(value) >= factor:
            return f"{_plain(value / factor)} {unit}"
    factor, unit = steps[-1]
    return f"{_plain(value / factor)} {unit}"


def format_value(column: str, value: Any) -> str:
    """A value as a reader wants it, in its column's unit: ``150 kB``, ``1.56 s``, ``5 Mbit/s``, ``12.5%``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool | str):
        return str(value)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    unit = unit_of(column)
    if unit == "bytes":
        return _scaled(v, [(1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1, "B")])
    if unit == "s":
        return _scaled(v, [(1, "s"), (1e-3, "ms"), (1e-6, "µs")])
    if unit == "ms":
        return _scaled(v, [(1e3, "s"), (1, "ms"), (1e-3, "µs")])
    if unit == "Mbit/s":
        return _scaled(v, [(1e3, "Gbit/s"), (1, "Mbit/s"), (1e-3, "kbit/s")])
    if unit == "%":
        return f"{_plain(v)}%"
    if unit == "1/s":
        return f"{_plain(v)}/s"
    if unit == "ratio":
        return f"{_plain(v)}×"
    if unit == "count" and v == int(v):
        return f"{int(v):,}"
    if unit == "fraction":
        return f"{_plain(v * 100)}%"
    return _plain(v)
