"""Run a simulation file: every policy under every seed, then summarise across seeds.

Per run it reports latency mean/p50/p95/p99, throughput, utilisation per node and link, bytes per link,
re-partitions, benchmarks, overhead fraction, stability and speed; across seeds the mean and 95% CI of
the latency figures; and regret against the oracle run of the same seed when an oracle is listed.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

from testbed.errors import ConfigurationError, TestbedError
from testbed.sim.conditions import build_trace
from testbed.sim.driver import make_driver
from testbed.sim.engine import Simulation
from testbed.sim.spec import SimulationSpec
from testbed.sim.stats import LatencyHistogram, mean_ci
from testbed.sim.world import World, load_world

__all__ = ["RunResult", "SimulationResult", "run_one", "run_simulation"]

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """One policy under one seed."""

    policy: str
    seed: int
    summary: dict
    histogram: LatencyHistogram
    timeline: list[tuple[float, float, int]]
    changes: list[tuple[float, str, float]]
    splits: list[tuple[float, str, str]]
    records: list[tuple] | None = None
    device_timelines: dict[str, list[tuple[float, float, int]]] = field(default_factory=dict)


@dataclass
class SimulationResult:
    spec: SimulationSpec
    runs: list[RunResult]
    summary: dict = field(default_factory=dict)

    def runs_frame(self):
        import pandas as pd

        rows = []
        for r in self.runs:
            row = {k: v for k, v in r.summary.items() if not isinstance(v, dict)}
            for group in ("node_utilisation", "link_utilisation", "link_bytes"):
                for k, v in r.summary[group].items():
                    row[f"{group}[{k}]"] = v
            rows.append(row)
        return pd.DataFrame(rows)

    def requests_frame(self):
        """Per-request rows (only when the file asked for records)."""
        import pandas as pd

        frames = []
        for r in self.runs:
            if r.records is None:
                continue
            f = pd.DataFrame(r.records, columns=["request", "device", "config", "arrival_s", "finish_s", "latency_s",
                                                 "compute_s", "transfer_s", "propagation_s"])
            f.insert(0, "seed", r.seed)
            f.insert(0, "policy", r.policy)
            frames.append(f)
        if not frames:
            return None
        return pd.concat(frames, ignore_index=True)

    def timeline_frame(self):
        import pandas as pd

        rows = [(r.policy, r.seed, t, m, c) for r in self.runs for t, m, c in r.timeline]
        return pd.DataFrame(rows, columns=["policy", "seed", "window_start_s", "mean_latency_s", "requests"])

    def device_timeline_frame(self):
        """The timeline per device (one panel each on the plot); None with one device."""
        import pandas as pd

        rows = [(r.policy, r.seed, d, t, m, c) for r in self.runs for d, tl in r.device_timelines.items()
                for t, m, c in tl]
        if len({row[2] for row in rows}) < 2:
            return None
        return pd.DataFrame(rows, columns=["policy", "seed", "device", "window_start_s", "mean_latency_s",
                                           "requests"])


def _q(hist: LatencyHistogram, q: float) -> float:
    return hist.quantile(q)


def run_one(world: World, spec: SimulationSpec, policy_spec, seed: int, traces=None, record: bool | None = None) -> RunResult:
    traces = [build_trace(c) for c in spec.conditions] if traces is None else traces
    policy = make_driver(policy_spec, world)
    sim = Simulation(world, spec, policy, seed, traces, record)
    raw = sim.run()
    hist: LatencyHistogram = raw["histogram"]
    window_s = max(raw["arrivals_end_s"] - spec.warmup_s, 1e-12)
    node_work = sum(raw["node_work_s"].values())
    node_capacity = sum(raw["node_capacity_s"].values())
    rho = raw["rho"]
    rho_max = max(rho.values()) if rho else 0.0
    unstable = sim.unstable_reason
    if unstable is None and rho_max >= 1:
        worst = max(rho, key=rho.get)
        unstable = f"offered load {rho_max:.2f} >= 1 on {worst if isinstance(worst, str) else '>'.join(worst)}"
    summary = {
        "policy": policy_spec.name,
        "kind": policy_spec.kind,
        "seed": seed,
        "arrived": sim.arrived,
        "finished": sim.finished,
        "in_flight": sim.in_flight,
        "measured": hist.n,
        "mean_s": hist.mean_s,
        "p50_s": _q(hist, 0.50),
        "p95_s": _q(hist, 0.95),
        "p99_s": _q(hist, 0.99),
        "max_s": hist.max_s if hist.n else math.nan,
        "throughput_per_s": hist.n / window_s,
        "sim_time_s": raw["end_s"],
        "wall_s": raw["wall_s"],
        "requests_per_s": sim.finished / raw["wall_s"] if raw["wall_s"] > 0 else math.inf,
        "stable": unstable is None,
        "unstable_reason": unstable,
        "rho_max": rho_max,
        # highest offered load at any moment (condition or split changes); >= 1 means a backlog built up
        "rho_peak": raw["rho_peak"],
        "overloaded_at": None if raw["rho_peak"] < 1 else f"t={raw['rho_peak_at'][0]:g} s on {raw['rho_peak_at'][1]}",
        "repartitions": sim.repartitions,
        "benchmarks": sim.benchmarks,
        "recalibrations": sim.recalibrations,
        "overhead_work_s": sim.overhead_work_s,
        "compile_work_s": sim.compile_work_s,
        # share of the nodes' capacity spent benchmarking, and share of all work done on the nodes
        "overhead_fraction": sim.overhead_work_s / node_capacity if node_capacity > 0 else 0.0,
        "overhead_share_of_work": sim.overhead_work_s / node_work if node_work > 0 else 0.0,
        "probe_bytes": sim.probe_bytes,
        "bytes_transferred": sum(raw["link_bytes"].values()),
        "final_config": ";".join(f"{d}={s.id}" for d, s in sim.split.items()),
        "node_utilisation": raw["node_utilisation"],
        "link_utilisation": raw["link_utilisation"],
        "link_bytes": raw["link_bytes"],
    }
    return RunResult(policy_spec.name, seed, summary, hist, sim.timeline.rows(), sim.change_log, sim.split_log,
                     sim.rec if sim.record else None,
                     {str(d): tl.rows() for d, tl in sim.device_timelines.items()})


def _aggregate(runs: list[RunResult], policies) -> dict:
    oracle = next((p.name for p in policies if p.kind == "oracle"), None)
    oracle_mean = {r.seed: r.summary["mean_s"] for r in runs if r.policy == oracle}
    out = {}
    for p in policies:
        mine = [r for r in runs if r.policy == p.name]
        entry = {"kind": p.kind, "seeds": [r.seed for r in mine]}
        for key in ("mean_s", "p50_s", "p95_s", "p99_s", "throughput_per_s", "overhead_fraction"):
            m, h = mean_ci(r.summary[key] for r in mine)
            entry[key] = m
            entry[f"{key}_ci95"] = h
        entry["repartitions"] = sum(r.summary["repartitions"] for r in mine) / len(mine)
        for key in ("benchmarks", "recalibrations", "compile_work_s"):  # refresh rounds and switch compiles
            entry[key] = sum(r.summary[key] for r in mine) / len(mine)
        entry["final_config"], entry["final_config_seeds"] = _most_common(r.summary["final_config"] for r in mine)
        entry["bytes_transferred"] = sum(r.summary["bytes_transferred"] for r in mine) / len(mine)
        entry["stable"] = all(r.summary["stable"] for r in mine)
        entry["rho_peak"] = max(r.summary["rho_peak"] for r in mine)
        reasons = [r.summary["unstable_reason"] for r in mine if r.summary["unstable_reason"]]
        entry["unstable_reason"] = reasons[0] if reasons else None
        if oracle is not None:
            regrets = [r.summary["mean_s"] - oracle_mean[r.seed] for r in mine if r.seed in oracle_mean]
            m, h = mean_ci(regrets)
            entry["regret_s"], entry["regret_s_ci95"] = m, h
        entry["node_utilisation"] = {
            k: sum(r.summary["node_utilisation"][k] for r in mine) / len(mine) for k in mine[0].summary["node_utilisation"]
        }
        entry["link_utilisation"] = {
            k: sum(r.summary["link_utilisation"][k] for r in mine) / len(mine) for k in mine[0].summary["link_utilisation"]
        }
        out[p.name] = entry
    return out


def _most_common(values) -> tuple[str, int]:
    """The value most seeds ended with (first seen on a tie) and how many seeds did."""
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    best = max(counts, key=counts.get)
    return best, counts[best]


def run_simulation(spec: SimulationSpec, world: World | None = None, progress=None) -> SimulationResult:
    """Every policy under every seed; ``progress(done, total, label)`` is called after each run."""
    world = world or load_world(spec)
    traces = [build_trace(c) for c in spec.conditions]
    for t in traces:  # names checked before the first run, so a typo costs nothing
        s = t.spec
        if s.target == "link" and world.topology.link(*s.link) is None:
            raise TestbedError(f"{s.where}.link: topology {world.topology.name} has no link {s.link[0]}-{s.link[1]}")
        if s.target == "node" and s.node not in world.nodes:
            raise TestbedError(f"{s.where}.node: {s.node!r} is not a node with a resource")
    for i, p in enumerate(spec.policies):  # '<tier>-only' must name a tier of this topology
        if p.is_native:
            try:
                world.native_split(p.kind)
            except ConfigurationError as exc:
                raise ConfigurationError(f"policies[{i}].kind: {exc}") from None
    wall0 = time.perf_counter()
    runs = []
    total = len(spec.policies) * len(spec.seeds)
    for p in spec.policies:
        for seed in spec.seeds:
            runs.append(run_one(world, spec, p, seed, traces))
            log.info("policy %s seed %s: %s requests", p.name, seed, runs[-1].summary["finished"])
            if progress is not None:
                progress(len(runs), total, f"{p.name} seed {seed}")
    wall_s = time.perf_counter() - wall0
    requests = sum(r.summary["finished"] for r in runs)
    run_wall = sum(r.summary["wall_s"] for r in runs)
    summary = {
        "name": spec.name,
        "config_ids": "layers",  # configuration ids are layer ranges (before issue 12: unprefixed block ranges)
        "model": world.model,
        "topology": world.topology.name,
        "requests": requests,
        "wall_s": wall_s,
        "requests_per_s": requests / run_wall if run_wall > 0 else math.inf,
        "stable": all(r.summary["stable"] for r in runs),
        "policies": _aggregate(runs, spec.policies),
    }
    return SimulationResult(spec, runs, summary)
