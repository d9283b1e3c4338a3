"""A `testbed run` results folder, written as the run goes so a failed or interrupted run keeps its data.

    RUN_DIR/run.json            experiment, topology, device, notes, fault events, status
    RUN_DIR/probes.parquet      one row per link direction: configured vs measured, mechanism
    RUN_DIR/profiles.parquet    every node's benchmarked blocks (flattened profiles)
    RUN_DIR/configs.parquet     per model and configuration: predicted, measured median/mean, failures
    RUN_DIR/requests.parquet    per request: latency, compute and transfer totals, ok/error
    RUN_DIR/hops.parquet        per request and hop: node, blocks, compute_s, transfer_in_s, bytes_in
    RUN_DIR/speeds.parquet      compute-speed probes: per model, configuration, round and computing node
    RUN_DIR/summary.{md,json}   median relative error, Spearman, regret per topology and model
    RUN_DIR/plots/*.png         predicted vs measured scatter; per-configuration breakdown
    RUN_DIR/<model>/            the single-model layout `testbed compare` reads (profiles/, run.json, ...)
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from emulator.topology import TopologySpec
from scission.problem import Configuration
from testbed.speeds import adjusted_latency, speed_factors

TIERS = ("device", "edge", "cloud")


def _atomic_parquet(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def _atomic_text(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _fmt(value: float | None, pct: bool = False) -> str:
    return "n/a" if value is None else (f"{value * 100:.1f}%" if pct else f"{value:.3f}")


def figure_rows(summary: list[dict[str, Any]]) -> list[str]:
    """Markdown rows (topology, model, configurations, prediction, error, Spearman, regret) of summaries,
    with a profile-only row under each speed-adjusted one."""
    rows = []
    for s in summary:
        rows.append(f"| {s['topology']} | {s['model']} | {s['configurations']} | {s.get('prediction', 'n/a')} | "
                    f"{_fmt(s['median_rel_error'], True)} | {_fmt(s['spearman'])} | {_fmt(s['regret'], True)} |")
        if "profile_only" in s:
            p = s["profile_only"]
            rows.append(f"| | | | profile only | {_fmt(p['median_rel_error'], True)} | {_fmt(p['spearman'])} | "
                        f"{_fmt(p['regret'], True)} |")
    return rows


def _figures(done: pd.DataFrame, predicted: str) -> dict[str, Any]:
    rel = (done[predicted] - done["measured_s"]).abs() / done["measured_s"]
    # Spearman = Pearson on ranks (average ranks for ties); no SciPy needed.
    spearman = done[predicted].rank().corr(done["measured_s"].rank()) if len(done) >= 2 else None
    best_predicted = done.loc[done[predicted].idxmin()]
    return {
        "median_rel_error": float(rel.median()),
        "spearman": None if spearman is None or math.isnan(spearman) else float(spearman),
        "regret": float(best_predicted["measured_s"] / done["measured_s"].min() - 1),
        "predicted_best": str(best_predicted["config"]),
    }


def summarise(configs: pd.DataFrame) -> dict[str, Any]:
    """The three figures for one (topology, model): over configurations with a measured latency.

    With compute-speed probes (``predicted_adjusted_s``) the headline figures use the prediction rescaled to
    each node's speed next to the measurement; ``profile_only`` keeps the figures of the unadjusted one.
    """
    done = configs.dropna(subset=["measured_s"])
    if len(done) == 0:
        return {"configurations": 0, "median_rel_error": None, "spearman": None, "regret": None}
    adjusted = "predicted_adjusted_s" in done.columns and done["predicted_adjusted_s"].notna().all()
    out: dict[str, Any] = {"configurations": int(len(done)),
                           "prediction": "speed-adjusted" if adjusted else "profile"}
    out.update(_figures(done, "predicted_adjusted_s" if adjusted else "predicted_s"))
    out["measured_best"] = str(done.loc[done["measured_s"].idxmin(), "config"])
    if adjusted:
        out["profile_only"] = _figures(done, "predicted_s")
    return out


class RunResults:
    def __init__(self, folder: Path, spec, topology: TopologySpec, device: str | None = None):
        self.folder = Path(folder)
        self.device = device
        self.folder.mkdir(parents=True, exist_ok=True)
        self.spec = spec
        self.topology = topology
        self.notes: list[str] = []
        self.events: list[dict] = []
        self.probes = pd.DataFrame()
        self.configs: dict[str, pd.DataFrame] = {}
        self.requests: list[dict] = []
        self.hops: list[dict] = []
        self.wall_s: dict[tuple[str, str], float] = {}
        self.speed_refs: dict[tuple[str, str], float | None] = {}
        self.speeds: list[dict] = []
        self.started = datetime.now(UTC).isoformat(timespec="seconds")
        self._write_meta("running")

    # ----------------------------------------------------------------------------------- inputs
    def profile_dir(self, model: str) -> Path:
        return self.folder / model / "profiles"

    def add_profile(self, model: str, files: dict[str, bytes], node: str, wall_s: float | None) -> None:
        for rel, data in files.items():
            path = self.profile_dir(model) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        if wall_s is not None:
            self.wall_s[(model, node)] = wall_s
        self._write_profiles_table()

    def set_speed_reference(self, model: str, node: str, benchmark_pass_s: float | None,
                            probe_s: float | None) -> None:
        """The node's benchmark chained-pass median (every factor's denominator) and a probe right after it."""
        self.speed_refs[(model, node)] = benchmark_pass_s
        factor = probe_s / benchmark_pass_s if probe_s and benchmark_pass_s else None
        self.speeds.append({"topology": self.topology.name, "model": model, "config": None, "label": "benchmark",
                            "round": 0, "node": node, "probe_s": probe_s, "reference_s": benchmark_pass_s,
                            "factor": factor})
        _atomic_parquet(pd.DataFrame(self.speeds), self.folder / "speeds.parquet")

    def speed_reference(self, model: str, node: str) -> float | None:
        return self.speed_refs.get((model, node))

    def add_speeds(self, model: str, cid: str, label: str, round_index: int, rows: list[dict]) -> None:
        """One round's speed probes next to a configuration's requests; re-derives every configuration's
        speed-adjusted prediction from all of the model's probes so far."""
        for row in rows:
            reference = self.speed_reference(model, row["node"])
            probe = row.get("probe_s")
            factor = probe / reference if probe and reference else None
            self.speeds.append({"topology": self.topology.name, "model": model, "config": cid, "label": label,
                                "round": round_index, "node": row["node"], "probe_s": probe,
                                "reference_s": reference, "factor": factor})
        factors = speed_factors(pd.DataFrame([r for r in self.speeds if r["model"] == model]))
        frame = self.configs[model]
        frame["predicted_adjusted_s"] = [adjusted_latency(r, factors) for _, r in frame.iterrows()]
        _atomic_parquet(pd.DataFrame(self.speeds), self.folder / "speeds.parquet")
        self._write_tables()

    def set_probes(self, probes: list) -> None:
        self.probes = pd.DataFrame([p.to_json() for p in probes])
        _atomic_parquet(self.probes, self.folder / "probes.parquet")

    def set_configs(self, model: str, chosen: list[tuple[str, Configuration]]) -> None:
        from testbed.run import config_id

        rows = []
        for label, config in chosen:
            row: dict[str, Any] = {"topology": self.topology.name, "model": model, "config": config_id(config),
                                   "label": label, "predicted_s": config.latency_s,
                                   "predicted_compute_s": config.compute_s, "predicted_transfer_s": config.transfer_s}
            for p in config.placements:
                row[f"{p.tier}_resource"] = f"{p.tier}-{p.resource}" if p.resource else None
                row[f"{p.tier}_first_block"] = p.first_block
                row[f"{p.tier}_last_block"] = p.last_block
                row[f"{p.tier}_node"] = p.resource if p.runs else None
                row[f"{p.tier}_compute_s"] = p.compute_s
            rows.append(row)
        frame = pd.DataFrame(rows)
        frame["predicted_adjusted_s"] = float("nan")
        frame["measured_s"] = float("nan")
        frame["measured_mean_s"] = float("nan")
        frame["requests_ok"] = 0
        frame["requests_failed"] = 0
        frame["error"] = None
        self.configs[model] = frame
        self._write_tables()

    def add_requests(self, model: str, cid: str, label: str, path: list[str], records: list[dict]) -> None:
        for r in records:
            hops = r.get("hops", [])
            compute = sum(h.get("compute_s") or 0.0 for h in hops)
            self.requests.append({
                "topology": self.topology.name, "model": model, "config": cid, "label": label,
                "request": r["request"], "ok": bool(r["ok"]), "error": r.get("error"),
                "latency_s": r.get("latency_s"), "compute_s": compute if r["ok"] else None,
                "transfer_s": (r["latency_s"] - compute) if r["ok"] else None,
                **{f"{h['node']}_compute_s": h.get("compute_s") for h in hops},
                **{f"{h['node']}_transfer_in_s": h.get("transfer_in_s") for h in hops},
            })
            for index, h in enumerate(hops):
                self.hops.append({"topology": self.topology.name, "model": model, "config": cid,
                                  "request": r["request"], "hop": index, "node": h["node"],
                                  "first_block": h.get("first_block"), "last_block": h.get("last_block"),
                                  "compute_s": h.get("compute_s"), "transfer_in_s": h.get("transfer_in_s"),
                                  "bytes_in": h.get("bytes_in")})
        frame = self.configs[model]
        mask = frame["config"] == cid
        mine = [r for r in self.requests if r["model"] == model and r["config"] == cid]
        ok = [r["latency_s"] for r in mine if r["ok"]]
        failed = [r for r in mine if not r["ok"]]
        if ok:
            frame.loc[mask, "measured_s"] = float(pd.Series(ok).median())
            frame.loc[mask, "measured_mean_s"] = float(pd.Series(ok).mean())
        frame.loc[mask, "requests_ok"] = len(ok)
        frame.loc[mask, "requests_failed"] = len(failed)
        if failed:
            frame.loc[mask, "error"] = failed[0].get("error")
        self._write_tables()

    def add_failure(self, model: str, cid: str, message: str) -> None:
        frame = self.configs[model]
        frame.loc[frame["config"] == cid, "error"] = message
        self.notes.append(message)
        self._write_tables()

    def add_event(self, model: str, cid: str, text: str) -> None:
        self.events.append({"model": model, "config": cid, "event": text,
                            "at": datetime.now(UTC).isoformat(timespec="seconds")})
        self._write_meta("running")

    def note(self, text: str) -> None:
        self.notes.append(text)
        self._write_meta("running")

    # ---------------------------------------------------------------------------------- outputs
    def _write_profiles_table(self) -> None:
        from scission.errors import ScissionError
        from scission.profile_folder import load_profiles

        rows = []
        for model in self.spec.models:
            folder = self.profile_dir(model)
            if not folder.exists():
                continue
            try:
                profiles = load_profiles(folder)
            except ScissionError:
                continue
            for p in profiles:
                m = p.models.get(model)
                if m is None:
                    continue
                for b in m.blocks:
                    rows.append({"model": model, "tier": p.resource.tier, "node": p.resource.name,
                                 "block": b.index, "first_layer": b.first_layer, "last_layer": b.last_layer,
                                 "median_s": b.latency.median_s, "mean_s": b.latency.mean_s,
                                 "p95_s": b.latency.p95_s, "output_bytes": b.output_bytes,
                                 "benchmark_wall_s": self.wall_s.get((model, p.resource.name))})
        if rows:
            _atomic_parquet(pd.DataFrame(rows), self.folder / "profiles.parquet")

    def _write_tables(self) -> None:
        if self.configs:
            _atomic_parquet(pd.concat(self.configs.values(), ignore_index=True), self.folder / "configs.parquet")
        if self.requests:
            _atomic_parquet(pd.DataFrame(self.requests), self.folder / "requests.parquet")
        if self.hops:
            _atomic_parquet(pd.DataFrame(self.hops), self.folder / "hops.parquet")

    def _write_meta(self, status: str) -> None:
        meta = {"experiment": str(self.spec.source) if self.spec.source else self.spec.name,
                "name": self.spec.name, "topology": str(self.spec.topology_path),
                "topology_name": self.topology.name, "models": list(self.spec.models), "status": status,
                "started": self.started, "notes": self.notes, "events": self.events,
                "requests_per_config": self.spec.requests, "repeats": self.spec.repeats}
        _atomic_text(json.dumps(meta, indent=2) + "\n", self.folder / "run.json")

    def _write_model_folders(self) -> None:
        """The layout `testbed compare` reads, one folder per model."""
        for model, frame in self.configs.items():
            folder = self.folder / model
            folder.mkdir(parents=True, exist_ok=True)
            if not self.probes.empty:
                _atomic_parquet(self.probes, folder / "probes.parquet")
            _atomic_parquet(frame, folder / "configs.parquet")
            speeds = [r for r in self.speeds if r["model"] == model]
            if speeds:
                _atomic_parquet(pd.DataFrame(speeds), folder / "speeds.parquet")
            mine = [r for r in self.requests if r["model"] == model and r["ok"]]
            if mine:
                _atomic_parquet(pd.DataFrame(mine), folder / "requests.parquet")
            shutil.copy(self.spec.topology_path, folder / "topology.yaml")
            meta = {"topology": "topology.yaml", "model": model, "concurrency": 1, "arrivals": "closed",
                    "device": self.device,
                    "resources": {n.name: f"{n.tier}-{n.name}" for n in self.topology.nodes}}
            _atomic_text(json.dumps(meta, indent=2) + "\n", folder / "run.json")

    def summary(self) -> list[dict[str, Any]]:
        return [{"topology": self.topology.name, "model": model, **summarise(frame)}
                for model, frame in self.configs.items()]

    def finish(self) -> None:
        self._write_tables()
        self._write_model_folders()
        summary = self.summary()
        _atomic_text(json.dumps(summary, indent=2) + "\n", self.folder / "summary.json")
        _atomic_text(self._markdown(summary), self.folder / "summary.md")
        if self.configs:
            from testbed.run_plots import plot_breakdown, plot_predicted_vs_measured

            configs = pd.concat(self.configs.values(), ignore_index=True)
            if configs["measured_s"].notna().any():
                plot_predicted_vs_measured(configs, self.folder / "plots" / "predicted-vs-measured.png")
            if self.hops:
                hops = pd.DataFrame(self.hops)
                for model in self.configs:
                    part = hops[hops["model"] == model]
                    if len(part):
                        plot_breakdown(part, self.configs[model], self.folder / "plots" / f"breakdown-{model}.png")
        failed = any(n.startswith(("run failed", "interrupted")) for n in self.notes)
        self._write_meta("failed" if failed else "done")

    def _markdown(self, summary: list[dict[str, Any]]) -> str:
        def seconds(v):
            return "n/a" if v is None or pd.isna(v) else f"{v:.4f}"

        lines = [f"# testbed run: {self.spec.name}", "",
                 f"Topology `{self.topology.name}`, {self.spec.requests} requests per configuration, "
                 f"benchmark repeats {self.spec.repeats}.", "",
                 "| topology | model | configurations | prediction | median rel. error | Spearman | regret |",
                 "|---|---|---|---|---|---|---|"]
        lines += figure_rows(summary)
        if any("profile_only" in s for s in summary):
            lines += ["", "Speed-adjusted: each computing node's share of the prediction is scaled by the median, over "
                      "the compute-speed probes taken next to the measurements, of probe / the median chained pass "
                      "of its benchmark (`speeds.parquet`)."]
        for model, frame in self.configs.items():
            lines += ["", f"## {model}", "",
                      "| label | configuration | predicted (s) | speed-adjusted (s) | measured median (s) | ok | failed |",
                      "|---|---|---|---|---|---|---|"]
            for _, r in frame.iterrows():
                lines.append(f"| {r['label']} | `{r['config']}` | {r['predicted_s']:.4f} | "
                             f"{seconds(r.get('predicted_adjusted_s'))} | {seconds(r['measured_s'])} | "
                             f"{r['requests_ok']} | {r['requests_failed']} |")
        if self.events or self.notes:
            lines += ["", "## Events and notes", ""]
            lines += [f"- {e['model']} `{e['config']}`: {e['event']}" for e in self.events]
            lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"
