"""What a run has measured so far, in memory: rows appended as they arrive, tables built on demand.

`RunResults` does no file I/O: `testbed.run.folder` writes its tables at checkpoints, and only the ones
that changed since the last checkpoint (``take_changed``). Table names are the folder's file stems:
probes, profiles, configs, requests, hops, speeds, loads.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from emulator.topology import TopologySpec
from scission.profiles import Profile
from testbed.run.agents import LoadReply, RequestRecord
from testbed.run.predict import Chosen
from testbed.run.spec import ExperimentSpec
from testbed.run.speeds import adjusted_latency, speed_factors
from testbed.run.summary import summarise

__all__ = ["CONFIG_IDS", "TABLES", "RunResults"]

log = logging.getLogger(__name__)
TABLES = ("probes", "profiles", "configs", "requests", "hops", "speeds", "loads")
CONFIG_IDS = "layers"  # the config columns hold layer-range ids (see testbed.run.folder.config_id_style)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RunResults:
    """The run's state: notes, fault events, and one growing list of rows per table."""

    def __init__(self, spec: ExperimentSpec, topology: TopologySpec, device: str | None = None):
        self.spec = spec
        self.topology = topology
        self.tiers: tuple[str, ...] = tuple(topology.tiers)
        self.device = device
        self.started = _now()
        self.notes: list[str] = []
        self.events: list[dict[str, Any]] = []
        self.failed = False
        self.rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES if name != "configs"}
        self.configs: dict[str, pd.DataFrame] = {}  # per model: one row per measured configuration
        self._latencies: dict[tuple[str, str], list[float]] = {}
        self._failures: dict[tuple[str, str], int] = {}
        self._wall_s: dict[tuple[str, str], float] = {}
        self._speed_refs: dict[tuple[str, str], float | None] = {}
        self._changed: set[str] = set()

    # ------------------------------------------------------------------------------ notes, status
    def note(self, text: str) -> None:
        self.notes.append(text)

    def warn(self, text: str) -> None:
        """A note that is also a warning line in the log: something was left out of the results."""
        log.warning("%s", text)
        self.notes.append(text)

    def fail(self, text: str) -> None:
        self.failed = True
        self.notes.append(text)

    @property
    def status(self) -> str:
        return "failed" if self.failed else "running"

    def add_event(self, model: str, cid: str, text: str) -> None:
        self.events.append({"model": model, "config": cid, "event": text, "at": _now()})

    def take_changed(self) -> set[str]:
        """Names of the tables changed since the last call (what a checkpoint has to write)."""
        changed, self._changed = self._changed, set()
        return changed

    # ------------------------------------------------------------------------------------ inputs
    def set_probes(self, probes: Sequence) -> None:
        self.rows["probes"] = [p.to_json() for p in probes]
        self._changed.add("probes")

    def set_profiles(self, model: str, profiles: Sequence[Profile], node: str, wall_s: float | None) -> None:
        """The model's profiles as read back from the folder after ``node``'s benchmark took ``wall_s``."""
        if wall_s is not None:
            self._wall_s[(model, node)] = wall_s
        rows = [r for r in self.rows["profiles"] if r["model"] != model]
        for p in profiles:
            m = p.models.get(model)
            if m is None:
                continue
            for b in m.blocks:
                rows.append({"model": model, "tier": p.resource.tier, "node": p.resource.name,
                             "runtime": m.runtime, "call_overhead_s": m.call_overhead_s,
                             "compile_s": m.run.get("compile_s"),
                             "block": b.index, "first_layer": b.first_layer, "last_layer": b.last_layer,
                             "median_s": b.latency.median_s, "mean_s": b.latency.mean_s,
                             "p95_s": b.latency.p95_s, "output_bytes": b.output_bytes,
                             "benchmark_wall_s": self._wall_s.get((model, p.resource.name))})
        self.rows["profiles"] = rows
        self._changed.add("profiles")

    def add_load(self, model: str, cid: str, label: str, round_index: int, node: str, first_block: int,
                  last_block: int, runtime: str, reply: LoadReply | None) -> None:
        """One stage load of a deployment: the runtime asked for and used, and the compile time it paid (0 when
        the node had compiled that range before: only a range new to the node pays)."""
        self.rows["loads"].append({
            "topology": self.topology.name, "model": model, "config": cid, "label": label, "round": round_index,
            "node": node, "first_block": first_block, "last_block": last_block, "requested_runtime": runtime,
            "runtime": reply.runtime if reply else None, "compile_s": reply.compile_s if reply else None,
            "cached": reply.cached if reply else None, "note": reply.note if reply else None})
        if reply is not None and reply.note and not reply.cached:
            self.warn(f"{model} {cid} on {node}: {reply.note}")
        self._changed.add("loads")

    def set_speed_reference(self, model: str, node: str, benchmark_pass_s: float | None,
                            probe_s: float | None) -> None:
        """The node's benchmark chained-pass median (every factor's denominator) and a probe right after it."""
        self._speed_refs[(model, node)] = benchmark_pass_s
        self._add_speed(model, None, "benchmark", 0, node, probe_s, benchmark_pass_s)

    def _add_speed(self, model: str, cid: str | None, label: str, round_index: int, node: str,
                   probe_s: float | None, reference_s: float | None) -> None:
        factor = probe_s / reference_s if probe_s and reference_s else None
        self.rows["speeds"].append({"topology": self.topology.name, "model": model, "config": cid, "label": label,
                                    "round": round_index, "node": node, "probe_s": probe_s,
                                    "reference_s": reference_s, "factor": factor})
        self._changed.add("speeds")

    def add_speeds(self, model: str, cid: str, label: str, round_index: int,
                   probes: Sequence[tuple[str, float | None]]) -> None:
        """One round's (node, probe seconds) next to a configuration's requests; re-derives every
        configuration's speed-adjusted prediction from all of the model's probes so far."""
        for node, probe_s in probes:
            self._add_speed(model, cid, label, round_index, node, probe_s, self._speed_refs.get((model, node)))
        factors = speed_factors(pd.DataFrame([r for r in self.rows["speeds"] if r["model"] == model]))
        frame = self.configs[model]
        frame["predicted_adjusted_s"] = [adjusted_latency(r, factors, self.tiers) for _, r in frame.iterrows()]
        self._changed.add("configs")

    def set_configs(self, model: str, chosen: Sequence[Chosen]) -> None:
        rows = []
        for c in chosen:
            config = c.config
            row: dict[str, Any] = {"topology": self.topology.name, "model": model, "config": config.id,
                                   "block_config": config.block_id,
                                   "label": c.label, "predicted_s": config.latency_s,
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
        self._changed.add("configs")

    def add_requests(self, model: str, cid: str, label: str, records: Sequence[RequestRecord]) -> None:
        """Append one drive call's records (``request`` already numbered within the configuration)."""
        latencies = self._latencies.setdefault((model, cid), [])
        first_error = None
        for r in records:
            compute = r.compute_s
            self.rows["requests"].append({
                "topology": self.topology.name, "model": model, "config": cid, "label": label,
                "request": r.request, "ok": r.ok, "error": r.error,
                "latency_s": r.latency_s, "compute_s": compute if r.ok else None,
                "transfer_s": (r.latency_s - compute) if r.ok and r.latency_s is not None else None,
                **{f"{h.node}_compute_s": h.compute_s for h in r.hops},
                **{f"{h.node}_transfer_in_s": h.transfer_in_s for h in r.hops},
            })
            for index, h in enumerate(r.hops):
                self.rows["hops"].append({"topology": self.topology.name, "model": model, "config": cid,
                                          "request": r.request, "hop": index, "node": h.node,
                                          "first_block": h.first_block, "last_block": h.last_block,
                                          "compute_s": h.compute_s, "transfer_in_s": h.transfer_in_s,
                                          "bytes_in": h.bytes_in})
            if r.ok:
                latencies.append(float(r.latency_s))
            else:
                self._failures[(model, cid)] = self._failures.get((model, cid), 0) + 1
                first_error = first_error or r.error
        frame = self.configs[model]
        mask = frame["config"] == cid
        if latencies:
            frame.loc[mask, "measured_s"] = float(pd.Series(latencies).median())
            frame.loc[mask, "measured_mean_s"] = float(pd.Series(latencies).mean())
        frame.loc[mask, "requests_ok"] = len(latencies)
        frame.loc[mask, "requests_failed"] = self._failures.get((model, cid), 0)
        if first_error is not None and frame.loc[mask, "error"].isna().all():
            frame.loc[mask, "error"] = first_error
        self._changed.update(("requests", "hops", "configs"))

    def add_failure(self, model: str, cid: str, message: str) -> None:
        """A configuration that could not be deployed or driven: no more requests are sent to it."""
        frame = self.configs[model]
        frame.loc[frame["config"] == cid, "error"] = message
        self.notes.append(message)
        self._changed.add("configs")

    # ----------------------------------------------------------------------------------- outputs
    def table(self, name: str, model: str | None = None) -> pd.DataFrame:
        """One table as a DataFrame (optionally only ``model``'s rows); empty when nothing was recorded."""
        if name == "configs":
            frames = [f for m, f in self.configs.items() if model is None or m == model]
            return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        rows = self.rows[name]
        if model is not None and name != "probes":
            rows = [r for r in rows if r["model"] == model]
        return pd.DataFrame(rows)

    def summary(self) -> list[dict[str, Any]]:
        return [{"topology": self.topology.name, "model": model, **summarise(frame)}
                for model, frame in self.configs.items()]

    def status_document(self, status: str | None = None) -> dict[str, Any]:
        """What status.json says: the experiment, the topology, notes, fault events and the run's status."""
        spec = self.spec
        return {"experiment": str(spec.source) if spec.source else spec.name, "name": spec.name,
                "topology": str(spec.topology), "topology_name": self.topology.name, "tiers": list(self.tiers),
                "device": self.device, "models": list(spec.models), "status": status or self.status,
                "started": self.started, "notes": self.notes, "events": self.events,
                "requests_per_config": spec.requests, "repeats": spec.repeats,
                "config_ids": CONFIG_IDS}
