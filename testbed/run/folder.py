"""The run-folder contract: the only code that writes a `testbed run` folder and the only code that reads one.

    RUN_DIR/status.json          experiment, topology, tiers, device, notes, fault events, status
    RUN_DIR/probes.parquet       one row per link direction: configured vs measured, mechanism
    RUN_DIR/profiles.parquet     every node's benchmarked blocks (flattened profiles)
    RUN_DIR/configs.parquet      per model and configuration: predicted, measured median/mean, failures;
                                 per tier T of the topology: T_resource, T_first_block, T_last_block (-1 when
                                 T runs nothing), T_node, T_compute_s
    RUN_DIR/requests.parquet     per request: latency, compute and transfer totals, ok/error
    RUN_DIR/hops.parquet         per request and hop: node, blocks, compute_s, transfer_in_s, bytes_in
    RUN_DIR/speeds.parquet       compute-speed probes: per model, configuration, round and computing node
    RUN_DIR/summary.{md,json}    median relative error, Spearman, regret per topology and model
    RUN_DIR/plots/*.png          predicted vs measured scatter; per-configuration breakdown
    RUN_DIR/<model>/             the single-model replay folder `testbed compare` reads:
        profiles/                the scission profile folder measured in the run's containers
        replay.json              {"topology", "resources": {node: label}, "model", "concurrency" or
                                 "rate_per_s", optional "arrivals", "device"/"devices", "input_bytes", "nodes"}
        topology.yaml, probes.parquet, configs.parquet, requests.parquet (ok requests), speeds.parquet

Folders written before the rename keep working: a replay folder's ``run.json`` is read when it has no
``replay.json`` (the run's top-level status used to be a second ``run.json``).

The ``config`` columns hold configuration ids. Since issue 12 they are layer ranges (``scission predict``'s
form) and ``status.json`` and ``replay.json`` say ``"config_ids": "layers"``; a folder without that field
was written before and holds unprefixed block ranges (``config_id_style`` tells them apart).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from emulator.topology import TopologySpec, load_topology
from scission.files import atomic_write_bytes, atomic_write_parquet, atomic_write_text
from scission.profile_folder import load_profiles
from scission.profiles import Profile
from testbed.errors import RunFolderError, translated
from testbed.run.results import CONFIG_IDS, RunResults
from testbed.run.summary import render_markdown

__all__ = ["CONFIG_IDS", "LEGACY_REPLAY", "REPLAY", "STATUS", "ReplayFolder", "ReportParts", "RunFolder",
           "config_id_style", "is_replay_folder", "read_replay", "report_parts"]

log = logging.getLogger(__name__)
STATUS = "status.json"
REPLAY = "replay.json"
LEGACY_REPLAY = "run.json"
PROBE_COLUMNS = ("a", "b", "configured_mbps", "configured_rtt_ms", "measured_mbps", "measured_rtt_ms", "mechanism")
REQUEST_COLUMNS = ("config", "latency_s")


def config_id_style(meta: dict[str, Any]) -> str:
    """How a folder's unprefixed configuration ids read: "layers" (issue 12 on) or "blocks" (before)."""
    style = meta.get("config_ids", "blocks")
    if style not in ("layers", "blocks"):
        raise RunFolderError(f"config_ids {style!r} is neither 'layers' nor 'blocks'")
    return style


def _json(data: Any) -> str:
    return json.dumps(data, indent=2) + "\n"


class RunFolder:
    """Writes one run's folder from its `RunResults`: cheap checkpoints as the run goes, everything at the end."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    def profile_dir(self, model: str) -> Path:
        return self.path / model / "profiles"

    def write_profile_files(self, model: str, files: dict[str, bytes]) -> None:
        for rel, data in files.items():
            atomic_write_bytes(self.profile_dir(model) / rel, data)

    def read_profiles(self, model: str) -> list[Profile]:
        with translated(RunFolderError, f"profiles of {model} in {self.profile_dir(model)}"):
            return load_profiles(self.profile_dir(model))

    def checkpoint(self, results: RunResults, status: str | None = None) -> None:
        """Write the tables that changed since the last checkpoint, and status.json."""
        for name in sorted(results.take_changed()):
            frame = results.table(name)
            if not frame.empty:
                atomic_write_parquet(frame, self.path / f"{name}.parquet")
        atomic_write_text(self.path / STATUS, _json(results.status_document(status)))

    def finish(self, results: RunResults) -> None:
        """The last checkpoint, the replay folders, summary.{json,md} and the plots; status done or failed."""
        self.checkpoint(results)
        self._write_replay_folders(results)
        summary = results.summary()
        atomic_write_text(self.path / "summary.json", _json(summary))
        atomic_write_text(self.path / "summary.md", render_markdown(
            results.spec.name, results.topology.name, results.spec.requests, results.spec.repeats, summary,
            results.configs, results.events, results.notes))
        if results.configs:
            from testbed.run.plots import (  # matplotlib, at the end only
                plot_breakdown,
                plot_predicted_vs_measured,
            )

            configs = results.table("configs")
            if configs["measured_s"].notna().any():
                plot_predicted_vs_measured(configs, self.path / "plots" / "predicted-vs-measured.png")
            hops = results.table("hops")
            for model in results.configs if not hops.empty else ():
                part = hops[hops["model"] == model]
                if len(part):
                    plot_breakdown(part, results.configs[model], self.path / "plots" / f"breakdown-{model}.png")
        atomic_write_text(self.path / STATUS, _json(results.status_document("failed" if results.failed else "done")))

    def _write_replay_folders(self, results: RunResults) -> None:
        probes = results.table("probes")
        for model, frame in results.configs.items():
            folder = self.path / model
            folder.mkdir(parents=True, exist_ok=True)
            if not probes.empty:
                atomic_write_parquet(probes, folder / "probes.parquet")
            atomic_write_parquet(frame, folder / "configs.parquet")
            speeds = results.table("speeds", model)
            if not speeds.empty:
                atomic_write_parquet(speeds, folder / "speeds.parquet")
            requests = results.table("requests", model)
            if not requests.empty and requests["ok"].any():
                atomic_write_parquet(requests[requests["ok"]].reset_index(drop=True), folder / "requests.parquet")
            shutil.copy(results.spec.topology, folder / "topology.yaml")
            meta = {"topology": "topology.yaml", "model": model, "concurrency": 1, "arrivals": "closed",
                    "config_ids": CONFIG_IDS,
                    "device": results.device,
                    "resources": {n.name: f"{n.tier}-{n.name}" for n in results.topology.nodes}}
            atomic_write_text(folder / REPLAY, _json(meta))


# ---------------------------------------------------------------------------------------- readers
@dataclass(frozen=True)
class ReplayFolder:
    """A single-model replay folder, read and checked (what `testbed compare` needs)."""

    path: Path
    meta: dict[str, Any]
    meta_path: Path
    topology: TopologySpec
    topology_path: Path
    profiles: list[Profile]
    probes: pd.DataFrame
    requests: pd.DataFrame
    configs: pd.DataFrame
    speeds: pd.DataFrame | None

    @property
    def profiles_path(self) -> Path:
        return self.path / "profiles"


def _read_parquet(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    if not path.exists():
        raise RunFolderError(f"{path} is missing; `testbed compare` needs a complete `testbed run` folder")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        raise RunFolderError(f"cannot read {path}: {exc}") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RunFolderError(f"{path} lacks columns {missing} (has {list(frame.columns)})")
    return frame


def _meta_path(run_dir: Path) -> Path:
    new, old = run_dir / REPLAY, run_dir / LEGACY_REPLAY
    return new if new.exists() or not old.exists() else old


def is_replay_folder(path: str | Path) -> bool:
    return (Path(path) / REPLAY).is_file() or (Path(path) / LEGACY_REPLAY).is_file()


def read_replay(run_dir: str | Path) -> ReplayFolder:
    """Read and check every file of a replay folder (RUN_DIR/<model>/); RunFolderError names what is wrong.

    A relative topology path is looked up in the folder first, then in the current folder.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunFolderError(f"run folder {run_dir} does not exist")
    meta_path = _meta_path(run_dir)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFolderError(f"{meta_path} is missing; `testbed compare` needs a `testbed run` replay folder "
                             f"(RUN_DIR/<model>)") from None
    except (OSError, ValueError) as exc:
        raise RunFolderError(f"cannot read {meta_path}: {exc}") from None
    if not isinstance(meta, dict):
        raise RunFolderError(f"{meta_path}: must be a JSON object")
    for key in ("topology", "resources", "model"):
        if key not in meta:
            raise RunFolderError(f"{meta_path}: field {key!r} is missing")
    if meta.get("rate_per_s") is None and meta.get("concurrency") is None:
        raise RunFolderError(f"{meta_path}: give rate_per_s (open loop) or concurrency (closed loop)")
    topo_path = Path(meta["topology"])
    if not topo_path.is_absolute() and (run_dir / topo_path).exists():
        topo_path = run_dir / topo_path
    with translated(RunFolderError, f"{meta_path}: topology"):
        topology = load_topology(topo_path)
    with translated(RunFolderError, f"{run_dir / 'profiles'}"):
        profiles = load_profiles(run_dir / "profiles")
    speeds_path = run_dir / "speeds.parquet"
    return ReplayFolder(
        path=run_dir, meta=meta, meta_path=meta_path, topology=topology, topology_path=topo_path,
        profiles=profiles,
        probes=_read_parquet(run_dir / "probes.parquet", PROBE_COLUMNS),
        requests=_read_parquet(run_dir / "requests.parquet", REQUEST_COLUMNS),
        configs=_read_parquet(run_dir / "configs.parquet", ("config", "predicted_s")),
        speeds=_read_parquet(speeds_path, ("config", "node", "factor")) if speeds_path.exists() else None,
    )


@dataclass(frozen=True)
class ReportParts:
    """What `testbed report` shows of a results folder: summary rows, summary markdown, plots, tables."""

    summary: list[dict[str, Any]]
    summary_md: str | None
    plots: list[Path]
    tables: dict[str, pd.DataFrame]


def report_parts(folder: str | Path) -> ReportParts:
    """The parts of a run folder (or a simulation output folder, which shares the summary/plots/tables shape)."""
    folder = Path(folder)
    rows: list[dict[str, Any]] = []
    summary_json = folder / "summary.json"
    if summary_json.exists():
        try:
            data = json.loads(summary_json.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RunFolderError(f"cannot read {summary_json}: {exc}") from None
        rows = data if isinstance(data, list) else data.get("results", [data])
    summary_md = folder / "summary.md"
    tables = {}
    for path in sorted(folder.glob("*.parquet")):
        try:
            tables[path.name] = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
            raise RunFolderError(f"cannot read {path}: {exc}") from None
    return ReportParts(rows, summary_md.read_text(encoding="utf-8") if summary_md.exists() else None,
                       sorted(folder.rglob("*.png")), tables)
