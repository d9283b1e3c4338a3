"""`testbed compare RUN_DIR/<model>`: simulated vs predicted vs measured latency for a `testbed run` folder.

It joins the two worlds (`testbed.run` and `testbed.sim` never import each other): the replay folder is
read through `testbed.run.folder` (its contract is documented there), the speed factors come from
`testbed.run.speeds`, and each configuration is simulated as a static policy at the run's load, with the
links set to the probes' measured bandwidth and RTT, and block times drawn from the run's own profiles.

A probe direction whose measurement is missing (NaN) keeps the topology's figures; requests with ``ok``
false are left out. With ``speeds.parquet`` each node's speed is set to 1 / its mean factor over the run,
the simulator replays at those speeds; ``predicted_s`` stays the prediction a user has before measuring (from
the profiles benchmarked in place), with the speed-adjusted one beside it as ``predicted_adjusted_s``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pandas as pd

from scission.files import atomic_write, atomic_write_parquet
from testbed.errors import RunFolderError, TestbedError
from testbed.run.folder import ReplayFolder, config_id_style, read_replay
from testbed.run.speeds import speed_factors
from testbed.sim.runner import run_one
from testbed.sim.spec import NodeOverride, simulation_from_dict
from testbed.sim.stats import mean_ci
from testbed.sim.world import Split, World

__all__ = ["TOLERANCE_PCT", "compare_run", "write_compare"]

TOLERANCE_PCT = 15.0


def _speed_factors(speeds, world: World) -> dict[str, float]:
    """Node -> pooled speed factor (mean of probe / reference over the run's probes: compare sets simulated
    against measured means), checked."""
    if speeds is None:
        return {}
    factors = speed_factors(speeds, "mean")
    for node, factor in factors.items():
        if node not in world.nodes:
            raise RunFolderError(f"speeds.parquet: node {node!r} is not in topology {world.topology.name}")
        if not (math.isfinite(factor) and factor > 0):
            raise RunFolderError(f"speeds.parquet: node {node} has speed factor {factor}: not usable")
    return factors


def _computing_nodes(crow) -> set[str]:
    """The nodes a configs.parquet row computes on (its <tier>_node columns, whatever the tiers)."""
    return {str(v) for c, v in crow.items() if str(c).endswith("_node") and isinstance(v, str)}


def _split_of_row(row, world: World, resources: dict, id_style: str) -> Split:
    has_blocks = all(f"{t}_first_block" in row and f"{t}_last_block" in row for t in world.tiers)
    if not has_blocks:
        try:
            split = world.parse_split(str(row["config"]), unprefixed=id_style)
        except TestbedError as exc:
            raise RunFolderError(f"configs.parquet: {exc}") from None
    else:
        counts = []
        for t in world.tiers:
            first, last = int(row[f"{t}_first_block"]), int(row[f"{t}_last_block"])
            counts.append(0 if first < 0 else last - first + 1)
            label = row.get(f"{t}_resource")
            if first >= 0 and isinstance(label, str):
                nodes = [n for n, nm in world.nodes.items() if nm.tier == t]
                if nodes and all(world.nodes[n].resource != label for n in nodes):
                    raise RunFolderError(
                        f"configs.parquet: configuration {row['config']!r} runs the {t} tier on {label}, but the replay file "
                        f"maps the {t} nodes to {sorted({world.nodes[n].resource for n in nodes})}"
                    )
        if sum(counts) != world.block_count:
            raise RunFolderError(f"configs.parquet: configuration {row['config']!r} covers {sum(counts)} of "
                                 f"{world.block_count} blocks")
        split = world.split(counts)
    world.check_split(split)
    return split


def _simulate(world: World, run: ReplayFolder, config: str, split: Split, n_requests: int, devices: list[str],
              seeds: tuple[int, ...], reply: bool) -> dict[str, float | bool]:
    """The simulator's answer for one configuration as a static policy at the run's load: mean latency (s)
    over seeds with its 95% CI, p95, mean compute per request and whether every seed stayed stable."""
    meta = run.meta
    if meta.get("concurrency") is not None:
        arrivals = {"kind": "closed", "concurrency": int(meta["concurrency"])}
    else:
        arrivals = {"kind": meta.get("arrivals", "poisson"), "rate_per_s": float(meta["rate_per_s"])}
    arrivals["devices"] = devices
    spec = simulation_from_dict({
        "name": f"compare-{config}",
        "topology": str(run.topology_path),
        "profiles": str(run.profiles_path),
        "resources": meta["resources"],
        "model": meta["model"],
        "arrivals": arrivals,
        "stop": {"requests": n_requests},
        "seeds": list(seeds),
        "service": "auto",
        "reply": reply,
        "policies": [{"kind": "static", "configuration": split.id, "name": config}],
    })
    sims = [run_one(world, spec, spec.policies[0], seed, record=True) for seed in seeds]
    mean_s, ci95_s = mean_ci(r.summary["mean_s"] for r in sims)
    p95_s, _ = mean_ci(r.summary["p95_s"] for r in sims)
    compute_s = sum(sum(r.compute_s for r in x.records) / len(x.records) for x in sims) / len(sims)
    return {"mean_s": mean_s, "ci95_s": ci95_s, "p95_s": p95_s, "compute_s": compute_s,
            "stable": all(r.summary["stable"] for r in sims)}


def compare_run(run_dir: Path, seeds: tuple[int, ...] = (1, 2, 3), min_requests: int = 2000, reply: bool = True):
    """One row per measured configuration: measured, simulated (mean over seeds, with CI) and predicted.

    reply: carry each result back to the device, as `testbed run`'s agents do (a measured request ends
    when the device has the answer); scission's prediction leaves the reply out.
    """
    run = read_replay(run_dir)
    meta, meta_path = run.meta, run.meta_path
    overrides = {}
    for key, value in (meta.get("nodes") or {}).items():
        try:
            overrides[key] = NodeOverride(capacity=value.get("capacity"), speed=float(value.get("speed", 1.0)))
        except (AttributeError, TypeError, ValueError):
            raise RunFolderError(f"{meta_path}: nodes.{key} must be {{capacity, speed}}") from None
    try:
        world = World(run.topology, run.profiles, meta["resources"], meta["model"], meta.get("input_bytes"),
                      overrides, profiles_label=str(run.profiles_path))
    except TestbedError as exc:
        raise RunFolderError(f"{meta_path}: {exc}") from None
    for row in run.probes.itertuples(index=False):
        hop = (str(row.a), str(row.b))
        if run.topology.link(*hop) is None:
            raise RunFolderError(f"probes.parquet: link {hop[0]}-{hop[1]} is not in topology {run.topology.name}")
        mbps = float("nan") if row.measured_mbps is None else float(row.measured_mbps)
        rtt = float("nan") if row.measured_rtt_ms is None else float(row.measured_rtt_ms)
        if math.isnan(mbps) and math.isnan(rtt):
            continue  # the direction could not be measured: the topology's figures stand
        if not math.isnan(mbps) and not (math.isfinite(mbps) and mbps > 0):
            raise RunFolderError(f"probes.parquet: link {hop[0]}>{hop[1]} measured {mbps} Mbit/s: not usable")
        if not math.isnan(rtt) and not (math.isfinite(rtt) and rtt >= 0):
            raise RunFolderError(f"probes.parquet: link {hop[0]}>{hop[1]} measured {rtt} ms RTT: not usable")
        world.link_overrides[hop] = (world.nominal_mbps(hop) if math.isnan(mbps) else mbps,
                                     world.rtt_ms(hop) if math.isnan(rtt) else rtt)

    devices = meta.get("devices") or ([meta["device"]] if meta.get("device") else [])
    unknown = [d for d in devices if d not in world.paths]
    if unknown:
        raise RunFolderError(f"{meta_path}: device {unknown[0]!r} is not a device node with a resource "
                             f"(devices: {', '.join(world.devices)})")
    senders = devices or world.devices

    requests = run.requests
    if "ok" in requests.columns:
        requests = requests[requests["ok"].astype(bool)]
    measured = requests.groupby("config")["latency_s"].agg(["mean", "count", lambda x: x.quantile(0.95)])
    measured.columns = ["measured_s", "requests", "measured_p95_s"]
    # where the time went, when the run recorded it: compute at nodes vs the rest (transfers, waiting)
    has_parts = "compute_s" in requests.columns
    if has_parts:
        parts = requests.assign(other_s=requests["latency_s"] - requests["compute_s"]).groupby("config")
        measured["measured_compute_s"] = parts["compute_s"].mean()
        measured["measured_network_s"] = parts["other_s"].mean()
    factors = _speed_factors(run.speeds, world)  # node speeds as probed next to the measurements
    for node, factor in factors.items():
        world.nodes[node] = dataclasses.replace(world.nodes[node], speed=world.nodes[node].speed / factor)
    id_style = config_id_style(meta)
    rows = []
    for _, crow in run.configs.iterrows():
        config = str(crow["config"])
        if config not in measured.index:
            continue  # predicted but never measured: nothing to validate
        split = _split_of_row(crow, world, meta["resources"], id_style)
        used = {n: f for n, f in factors.items() if n in _computing_nodes(crow)}
        n_requests = max(min_requests, int(measured.loc[config, "requests"])) * len(senders)
        sim = _simulate(world, run, config, split, n_requests, devices, seeds, reply)
        sim_mean, sim_ci, sim_p95, sim_compute = sim["mean_s"], sim["ci95_s"], sim["p95_s"], sim["compute_s"]
        m = float(measured.loc[config, "measured_s"])
        profile_predicted = float(crow["predicted_s"])
        adjusted = crow.get("predicted_adjusted_s")
        predicted_adjusted = (float(adjusted) if used and adjusted is not None and not pd.isna(adjusted)
                              else profile_predicted)
        predicted = profile_predicted  # the headline: what scission said before any request (issue 13)
        sim_err = (sim_mean - m) / m * 100 if m > 0 else math.nan
        pred_err = (predicted - m) / m * 100 if m > 0 else math.nan
        rows.append({
            "config": config,
            "split": split.id,
            "block_split": split.block_id,
            "requests": int(measured.loc[config, "requests"]),
            "measured_s": m,
            "measured_p95_s": float(measured.loc[config, "measured_p95_s"]),
            "simulated_s": sim_mean,
            "simulated_ci95_s": sim_ci,
            "simulated_p95_s": sim_p95,
            "predicted_s": predicted,
            "predicted_profile_s": profile_predicted,
            "predicted_adjusted_s": predicted_adjusted,
            "speed_factors": json.dumps(used, sort_keys=True) if used else "",
            "sim_error_pct": sim_err,
            "pred_error_pct": pred_err,
            "within_15pct": bool(abs(sim_err) <= TOLERANCE_PCT),
            "measured_compute_s": float(measured.loc[config, "measured_compute_s"]) if has_parts else math.nan,
            "simulated_compute_s": sim_compute,
            "measured_network_s": float(measured.loc[config, "measured_network_s"]) if has_parts else math.nan,
            "simulated_network_s": sim_mean - sim_compute,
            "stable": sim["stable"],
        })
    if not rows:
        raise RunFolderError(f"{run_dir}: no configuration of configs.parquet has measured requests in requests.parquet")
    return pd.DataFrame(rows)


def write_compare(table, out_dir: Path) -> list[Path]:
    """compare.csv, compare.parquet and compare.png (grouped bars: measured, simulated, predicted)."""
    import numpy as np  # with matplotlib, only when a plot is written

    from scission.plots import (
        DOUBLE_COLUMN_IN,
        HATCHES,
        PALETTE,
        SINGLE_COLUMN_IN,
        figure_paths,
        pyplot,
        save_figure,
    )

    plt = pyplot()

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "compare.csv", lambda tmp: table.to_csv(tmp, index=False))
    atomic_write_parquet(table, out / "compare.parquet")
    x = np.arange(len(table))
    w = 0.27
    fig, ax = plt.subplots(figsize=(SINGLE_COLUMN_IN if len(table) <= 3 else DOUBLE_COLUMN_IN, 3.4),
                           layout="constrained")
    look = {"edgecolor": "#000000", "linewidth": 0.4}
    ax.bar(x - w, table["measured_s"], w, label="measured", color=PALETTE[0], hatch=HATCHES[0], **look)
    ax.bar(x, table["simulated_s"], w, yerr=table["simulated_ci95_s"], capsize=2, color=PALETTE[1],
           hatch=HATCHES[1], label="simulated (whisker: 95% t-interval over seeds)", **look)
    ax.bar(x + w, table["predicted_s"], w, label="predicted (scission)", color=PALETTE[2], hatch=HATCHES[2], **look)
    ax.set_xticks(x, table["config"], rotation=20, ha="right")
    ax.set_ylabel("mean latency (s)")
    ax.set_title(f"simulated vs predicted vs measured\n(±{TOLERANCE_PCT:g}% target for simulated)")
    fig.legend(loc="outside lower center", ncol=1 if len(table) <= 3 else 3, frameon=False)
    save_figure(fig, out / "compare.png")
    return [out / "compare.csv", out / "compare.parquet", *figure_paths(out / "compare.png")]
