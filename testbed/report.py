"""`testbed report`: one self-contained HTML page (plots inlined as PNG data) from a results table or folder.

Accepts a sweep's ``results.parquet`` (or its folder), a ``testbed simulate --out`` folder (a simulation
report), or a ``testbed run`` results folder (its summary, tables and plots); anything else is one line. No external files, scripts or fonts: the page opens anywhere.
"""

from __future__ import annotations

import base64
import html
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from scission.files import atomic_write_text
from scission.plots import active_formats, format_value, parse_formats
from testbed.errors import TestbedError
from testbed.run.folder import report_parts
from testbed.sweep import plots

RUN_MARKERS = ("status.json", "summary.md", "configs.parquet", "replay.json", "run.json")
TABLE_ROWS = 50
MAX_FIGURES = 40  # per report; what is not drawn is in the linked tables

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.8em;margin:.5em 0} td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}
th{background:#f3f3f3} figure{margin:1em 0} figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555} .meta{color:#666;font-size:.85em} pre{background:#f7f7f7;padding:1em;overflow:auto}
"""


def _img(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _formatted(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell in its column's unit (``150 kB``, ``1.56 s``), never in e-notation."""
    out = frame.copy()
    for column in out.columns:
        if column.endswith("_ci95") or column.endswith("_ci95_s"):
            base = column.removesuffix("_ci95").removesuffix("_ci95_s") + ("_s" if column.endswith("_s") else "")
            out[column] = [("± " + format_value(base, v)) if pd.notna(v) else "" for v in out[column]]
        elif pd.api.types.is_numeric_dtype(out[column]) and not pd.api.types.is_bool_dtype(out[column]):
            if column in ("seed", "n", "replications"):
                out[column] = [format_value("n", v) for v in out[column]]
            else:
                out[column] = [format_value(column, v) for v in out[column]]
    return out


def _table(frame: pd.DataFrame, max_rows: int = TABLE_ROWS, name: str = "table") -> str:
    """The first ``max_rows`` rows in units; the whole table (raw numbers) linked as an embedded CSV."""
    shown = _formatted(frame.head(max_rows))
    body = shown.to_html(index=False, border=0, na_rep="", escape=True)
    if len(frame) <= max_rows:
        return body
    csv = base64.b64encode(frame.to_csv(index=False).encode()).decode()
    link = (f'<a download="{html.escape(name)}.csv" href="data:text/csv;base64,{csv}">'
            f"all {len(frame):,} rows as CSV</a>")
    return body + f"<p class=meta>first {max_rows} of {len(frame):,} rows; {link}</p>"


def distribution_gain(table: pd.DataFrame) -> pd.DataFrame | None:
    """Per point and seed: best single-tier latency / each non-native policy's latency (>1: distributing wins)."""
    if "policy" not in table or "mean_s" not in table:
        return None
    is_native = table["policy"].astype(str).str.endswith("-only")  # '<tier>-only', whatever the tiers
    if not is_native.any():
        return None
    keys = [c for c in plots.axis_columns(table) if c != "policy"] + ["seed"]
    native = table[is_native].groupby(keys, dropna=False)["mean_s"].min().rename("best_native_s")
    others = table[~is_native]
    if others.empty:
        return None
    merged = others.join(native, on=keys)
    merged["distribution_gain"] = merged["best_native_s"] / merged["mean_s"]
    return merged


def _split(table: pd.DataFrame, axes: list[str]) -> list[tuple[dict[str, Any], pd.DataFrame]]:
    """One (values, rows) pair per combination of ``axes`` (one figure each)."""
    if not axes:
        return [({}, table)]
    return [(dict(zip(axes, key if isinstance(key, tuple) else (key,), strict=True)), part)
            for key, part in table.groupby(axes, sort=True, dropna=False)]


def _slug(values: dict[str, Any]) -> str:
    text = "-".join(f"{c}={v}" for c, v in values.items())
    return "".join(ch if ch.isalnum() or ch in "=.-_" else "_" for ch in text) or "all"


def plan_sweep_figures(table: pd.DataFrame) -> dict[str, Any]:
    """Which axis each plot shows as x, hue and facet, and which axes get a figure per value."""
    varying = plots.varying_axes(table)
    numeric = [c for c in varying if c not in plots.SERIES_COLUMNS and pd.api.types.is_numeric_dtype(table[c])]
    x = "bandwidth_mbps" if "bandwidth_mbps" in numeric else (numeric[0] if numeric else None)
    hue = next((c for c in plots.SERIES_COLUMNS if c in axes_of(table)), None)
    rest = [c for c in varying if c not in (x, hue)]
    # the axis with most values (up to 24) becomes the panels; the others a figure per value
    facet = max((c for c in rest if table[c].nunique() <= 24), key=lambda c: table[c].nunique(), default=None)
    return {"varying": varying, "numeric": numeric, "x": x, "hue": hue, "facet": facet,
            "split": [c for c in rest if c != facet]}


def axes_of(table: pd.DataFrame) -> list[str]:
    return plots.axis_columns(table)


def counts_line(table: pd.DataFrame) -> str:
    """Points (axis combinations), replications (seeds per point) and rows, counted apart."""
    point_axes = [c for c in plots.varying_axes(table) if c not in plots.SERIES_COLUMNS]
    groups = table.groupby(point_axes, dropna=False) if point_axes else [((), table)]
    seeds = [part["seed"].nunique() if "seed" in part else 1 for _, part in groups]
    series = next((c for c in plots.SERIES_COLUMNS if c in table), None)
    kinds = table[series].nunique() if series else 1
    what = {"policy": ("policy", "policies"), "label": ("configuration", "configurations")}.get(
        series or "policy", ("policy", "policies"))
    reps = f"{min(seeds)}" if min(seeds) == max(seeds) else f"{min(seeds)}–{max(seeds)}"
    return (f"{len(seeds):,} points (combinations of {', '.join(point_axes) or 'no varying axis'}) × "
            f"{reps} replications (seeds) each; {kinds} {what[0] if kinds == 1 else what[1]} per run; "
            f"{len(table):,} rows")


def _sweep_sections(table: pd.DataFrame, work: Path, formats: tuple[str, ...]) -> list[str]:
    parts = []
    if "error" in table and table["error"].notna().any():
        parts.append("<h2>Points that failed</h2>" + _table(table[table["error"].notna()], name="failed"))
        table = table[table["error"].isna()]
    fixed = plots.fixed_axes(table)
    parts.append(f"<p>{html.escape(counts_line(table))}.</p>")
    if fixed:
        parts.append(f"<p>Fixed in every row: {html.escape(plots.describe_fixed(fixed))}.</p>")
    plan = plan_sweep_figures(table)
    x, hue, facet, split = plan["x"], plan["hue"], plan["facet"], plan["split"]
    metrics = plots.metric_columns(table)[:3]
    drawn = 0
    if x is not None:
        for metric in metrics:
            for values, part in _split(table, split):
                if drawn >= MAX_FIGURES:
                    break
                d = plots.line_plot(part, x, metric, work / f"line-{metric}-{_slug(values)}.png", hue=hue,
                                    facet=facet, formats=formats)
                parts.append(_img(d.path, d.caption))
                drawn += 1
    for d in _refresh_tradeoffs(table, plan, work, formats):
        parts.append(_img(d.path, d.caption))
        drawn += 1
    gain = distribution_gain(table)
    numeric = plan["numeric"]
    if gain is not None and x is not None:
        y = facet if facet is not None else next((c for c in numeric if c != x), None)
        if y is not None:
            rest = [c for c in split if c != y]
            for policy in sorted(gain["policy"].unique())[:4]:
                for values, part in _split(gain[gain["policy"] == policy], rest):
                    if drawn >= MAX_FIGURES:
                        break
                    d = plots.heatmap(part, x, y, "distribution_gain",
                                      work / f"gain-{policy}-{_slug(values)}.png", formats=formats,
                                      title=f"best single tier / {policy} (> 1×: distributing wins)")
                    parts.append(_img(d.path, d.caption))
                    drawn += 1
    elif len(numeric) >= 2 and metrics:
        gx, gy = numeric[0], numeric[1]
        rest = [c for c in plan["varying"] if c not in (gx, gy)]
        for values, part in _split(table, rest):
            if drawn >= MAX_FIGURES:
                break
            d = plots.heatmap(part, gx, gy, metrics[0], work / f"heatmap-{_slug(values)}.png", formats=formats)
            parts.append(_img(d.path, d.caption))
            drawn += 1
    if drawn >= MAX_FIGURES:
        parts.append(f"<p class=meta>figures stop at {MAX_FIGURES}; every point is in the tables below.</p>")
    if metrics:
        by = plan["varying"]
        summary = None
        counts: list[int] = []
        for metric in metrics:
            s = plots.summarise(table, by, metric)
            counts += s["n"].tolist()
            s = s.rename(columns={"mean": metric, "ci95": f"{metric}_ci95", "n": "replications"})
            summary = s if summary is None else summary.merge(s.drop(columns="replications"), on=by)
        parts.append(f"<h2>Summary: {html.escape(plots.replications_text(counts))} "
                     f"({plots.INTERVAL}: ± half-width)</h2>" + _table(summary, name="summary"))
    parts.append("<h2>All rows (one per point, seed and policy)</h2>"
                 + _table(table.drop(columns=[c for c in table if c.startswith(("link_", "node_"))]), name="results"))
    return parts


def _refresh_tradeoffs(table: pd.DataFrame, plan: dict[str, Any], work: Path,
                       formats: tuple[str, ...]) -> list[plots.Drawn]:
    """Regret against overhead, one line per refresh mode, one point per benchmarking period: for a sweep
    that varies ``refresh`` (and the period), one figure per refreshing policy (and per other varying axis)."""
    varying = plan["varying"]
    if not {"refresh", "benchmark_period_s"} <= set(varying) or not {"regret", "overhead_fraction"} <= set(table):
        return []
    refreshing = table[table["kind"].isin(["periodic", "adaptive"])] if "kind" in table else table
    rest = [c for c in varying if c not in ("refresh", "benchmark_period_s")]
    out = []
    for values, part in _split(refreshing, rest):
        if part["regret"].notna().any():
            out.append(plots.tradeoff_plot(part, "overhead_fraction", "regret", "benchmark_period_s", "refresh",
                                           work / f"tradeoff-{_slug(values)}.png", formats=formats,
                                           title="regret against refresh overhead"))
    return out


def _run_folder_sections(folder: Path) -> list[str]:
    parts = []
    found = report_parts(folder)
    if found.summary:
        parts.append("<h2>Prediction against measurement</h2>" + _table(pd.json_normalize(found.summary)))
    if found.summary_md is not None:
        parts.append(f"<h2>summary.md</h2><pre>{html.escape(found.summary_md)}</pre>")
    for png in found.plots:
        if "report-figures" in png.relative_to(folder).parts:  # a previous report's own figures
            continue
        parts.append(_img(png, str(png.relative_to(folder))))
    for name, frame in found.tables.items():
        parts.append(f"<h2>{html.escape(name)}</h2>" + _table(frame, name=name.removesuffix(".parquet")))
    return parts


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise TestbedError(f"cannot read {path}: {exc}") from None


def _simulation_sections(folder: Path, work: Path, formats: tuple[str, ...]) -> list[str]:
    """A `testbed simulate --out` folder: per-policy summary, latency over time with the seed spread, runs."""
    from testbed.sim.output import plot_timeline_frames

    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TestbedError(f"cannot read {folder / 'summary.json'}: {exc}") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("policies"), dict):
        raise TestbedError(f"{folder / 'summary.json'}: no 'policies' table; is this a simulation output folder?")
    runs = _read(folder / "runs.parquet")
    timeline = _read(folder / "timeline.parquet")
    seeds = sorted(runs["seed"].unique().tolist()) if "seed" in runs else []
    parts = [f"<p>simulation {html.escape(str(summary.get('name', folder.name)))}: model "
             f"{html.escape(str(summary.get('model', '?')))} on {html.escape(str(summary.get('topology', '?')))}; "
             f"{len(summary['policies'])} policies × {len(seeds)} replications (seeds {', '.join(map(str, seeds))}); "
             f"{summary.get('requests', 0):,} requests simulated.</p>"]
    rows = [{"policy": name, **{k: v for k, v in entry.items() if not isinstance(v, dict | list)}}
            for name, entry in summary["policies"].items()]
    parts.append(f"<h2>Per policy: mean over {len(seeds)} seeds, ± {plots.INTERVAL} half-width</h2>"
                 + _table(pd.DataFrame(rows), name="policies"))
    if not timeline.empty:
        devices_path = folder / "device_timeline.parquet"
        devices = _read(devices_path) if devices_path.exists() else None
        path = plot_timeline_frames(timeline, work / "latency_over_time.png", str(summary.get("name", folder.name)),
                                    devices, formats=formats)
        n = timeline["seed"].nunique()
        parts.append(_img(path, f"mean latency per time window: median over {n} seeds, band: range over seeds"
                                + ("; one panel per device" if devices is not None else "")))
    cdf = folder / "latency_cdf.png"
    if cdf.exists():
        parts.append(_img(cdf, "latency CDF per policy, all seeds pooled (latency_cdf.png)"))
    parts.append("<h2>Runs (one per policy and seed)</h2>" + _table(runs, name="runs"))
    return parts


def folder_kind(source: Path) -> tuple[str, Path | None, Path]:
    """('sweep' | 'simulation' | 'run', table, folder), or one TestbedError naming what was looked for."""
    if not source.exists():
        raise TestbedError(f"{source} does not exist; give a results.parquet, a sweep, simulation or run folder")
    if source.is_file():
        if source.suffix == ".parquet":
            return "sweep", source, source.parent
        raise TestbedError(f"{source} is neither a Parquet results table nor a results folder")
    if (source / "results.parquet").exists():
        return "sweep", source / "results.parquet", source
    if (source / "runs.parquet").exists() and (source / "timeline.parquet").exists():
        return "simulation", None, source
    if any((source / name).exists() for name in RUN_MARKERS) or (source / "plots").is_dir():
        return "run", None, source
    raise TestbedError(f"{source} is not a sweep (results.parquet), simulation (runs.parquet, timeline.parquet) "
                       f"or run ({', '.join(RUN_MARKERS)}) results folder")


def build_report(source: str | Path, out: str | Path | None = None,
                 formats: str | tuple[str, ...] | None = None) -> Path:
    """Write the HTML page; returns its path (default: next to the input, ``report.html``).

    Figures are embedded as PNG; with ``formats`` (or a command's ``--format``) they are also written,
    in those formats, to ``report-figures/`` next to the page.
    """
    source = Path(source)
    kind, table_path, folder = folder_kind(source)
    out_path = Path(out) if out else folder / "report.html"
    extra = parse_formats(formats) if formats is not None else active_formats()
    title = f"{kind} report: {folder.resolve().name}"
    with tempfile.TemporaryDirectory() as tmp:
        work = out_path.parent / "report-figures" if extra else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        chosen = ("png", *[f for f in (extra or ()) if f != "png"])
        if kind == "sweep":
            table = _read(table_path)
            if table.empty:
                raise TestbedError(f"{table_path} has no rows yet")
            sections = _sweep_sections(table, work, chosen)
        elif kind == "simulation":
            sections = _simulation_sections(folder, work, chosen)
        else:
            sections = _run_folder_sections(folder)
            if not sections:
                raise TestbedError(f"{folder} has no summary, plots or tables to report")
        generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        page = (
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p class=meta>from {html.escape(str(source))}, generated {generated}</p>"
            + "\n".join(sections)
            + "</body></html>"
        )
    atomic_write_text(out_path, page)
    return out_path
