"""`testbed report`: one self-contained HTML page (plots inlined as PNG data) from a results table or folder.

Accepts a sweep's ``results.parquet`` (or its folder), or a ``testbed run`` results folder (its
summary, tables and plots). No external files, scripts or fonts: the page opens anywhere.
"""

from __future__ import annotations

import base64
import html
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from scission.files import atomic_write_text
from testbed.errors import TestbedError
from testbed.run.folder import report_parts
from testbed.sweep import plots

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


def _table(frame: pd.DataFrame, max_rows: int = 200) -> str:
    shown = frame.head(max_rows)
    note = f"<p class=meta>first {max_rows} of {len(frame)} rows</p>" if len(frame) > max_rows else ""
    return shown.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0, na_rep="") + note


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


def _sweep_sections(table: pd.DataFrame, work: Path) -> list[str]:
    parts = []
    if "error" in table and table["error"].notna().any():
        parts.append("<h2>Points that failed</h2>" + _table(table[table["error"].notna()]))
        table = table[table["error"].isna()]
    axes = [c for c in plots.axis_columns(table) if table[c].nunique() > 1 or c == "policy"]
    numeric = [c for c in axes if pd.api.types.is_numeric_dtype(table[c])]
    categorical = [c for c in axes if c not in numeric]
    metrics = plots.metric_columns(table)[:4]
    hue = "policy" if "policy" in categorical else (categorical[0] if categorical else None)
    facet = next((c for c in categorical if c != hue and table[c].nunique() <= 24), None)
    if numeric:
        x = numeric[0]
        for metric in metrics:
            path = plots.line_plot(table, x, metric, work / f"line-{metric}.png", hue=hue, facet=facet)
            parts.append(_img(path, f"{metric} against {x} (mean and 95% CI over replications)"))
    gain = distribution_gain(table)
    if gain is not None and numeric:
        x = numeric[0]
        y = facet or (numeric[1] if len(numeric) > 1 else None)
        if y is not None:
            for policy in sorted(gain["policy"].unique())[:4]:
                part = gain[gain["policy"] == policy]
                path = plots.heatmap(part, x, y, "distribution_gain", work / f"gain-{policy}.png",
                                     title=f"best single tier / {policy} (> 1: distributing wins)")
                parts.append(_img(path, f"where {policy} beats the best single-tier execution"))
    elif len(numeric) >= 2 and metrics:
        path = plots.heatmap(table, numeric[0], numeric[1], metrics[0], work / "heatmap.png")
        parts.append(_img(path, f"{metrics[0]} over {numeric[0]} and {numeric[1]}"))
    if metrics:
        by = [c for c in axes]
        summary = None
        for metric in metrics:
            s = plots.summarise(table, by, metric).rename(columns={"mean": metric, "ci95": f"{metric}_ci95"})
            summary = s if summary is None else summary.merge(s.drop(columns="n"), on=by)
        parts.append("<h2>Summary (mean and 95% CI over replications)</h2>" + _table(summary))
    parts.append("<h2>All rows</h2>" + _table(table.drop(columns=[c for c in table if c.startswith(("link_", "node_"))])))
    return parts


def _run_folder_sections(folder: Path) -> list[str]:
    parts = []
    found = report_parts(folder)
    if found.summary:
        parts.append("<h2>Prediction against measurement</h2>" + _table(pd.json_normalize(found.summary)))
    if found.summary_md is not None:
        parts.append(f"<h2>summary.md</h2><pre>{html.escape(found.summary_md)}</pre>")
    for png in found.plots:
        parts.append(_img(png, str(png.relative_to(folder))))
    for name, frame in found.tables.items():
        parts.append(f"<h2>{html.escape(name)}</h2>" + _table(frame, 50))
    return parts


def build_report(source: str | Path, out: str | Path | None = None) -> Path:
    """Write the HTML page; returns its path (default: next to the input, ``report.html``)."""
    source = Path(source)
    if not source.exists():
        raise TestbedError(f"{source} does not exist; give a results.parquet, a sweep folder or a run folder")
    if source.is_dir() and (source / "results.parquet").exists():
        kind, table_path, folder = "sweep", source / "results.parquet", source
    elif source.is_file() and source.suffix == ".parquet":
        kind, table_path, folder = "sweep", source, source.parent
    elif source.is_dir():
        kind, table_path, folder = "run", None, source
    else:
        raise TestbedError(f"{source} is neither a Parquet results table nor a results folder")
    out_path = Path(out) if out else folder / "report.html"
    title = f"{kind} report: {folder.resolve().name}"
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "sweep":
            try:
                table = pd.read_parquet(table_path)
            except Exception as exc:  # pyarrow raises several types for a damaged file
                raise TestbedError(f"cannot read {table_path}: {exc}") from None
            if table.empty:
                raise TestbedError(f"{table_path} has no rows yet")
            sections = _sweep_sections(table, Path(tmp))
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
