"""Compute-speed probes: how much slower or faster a node ran during the measurements than at its benchmark.

A CFS quota emulates a slow CPU well on average, but on a shared VM the CPU work a small quota buys drifts
by tens of percent within seconds, so a profile benchmarked at one moment mispredicts device-heavy
configurations measured minutes later. `testbed run` probes each node's speed (chained passes of the whole
model on the agent's serving thread) right after its benchmark and next to every round of every
configuration; the ratio rescales that node's share of the prediction, as link probes set the network's.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

__all__ = ["adjusted_latency", "speed_factors"]


def speed_factors(speeds: pd.DataFrame, statistic: str = "median") -> dict[str, float]:
    """Node -> median (or mean) of probe / reference over every probe taken next to a measurement.

    The median goes with measured medians (`testbed run`'s figures); the mean with measured means (`testbed
    compare`): a node's slow episodes are a heavy tail that moves the mean latency but not the median.

    Pooled over configurations and rounds: a node's speed does not depend on the configuration, and on this
    host it swings within seconds, so one probe next to a few requests tracks it worse than the median of
    all of them estimates the speed over the measurement window (the benchmark samples one moment of it).
    """
    if speeds.empty or "factor" not in speeds.columns:
        return {}
    measured = speeds[speeds["config"].notna() & speeds["factor"].notna()]
    return {str(node): float(values.agg(statistic)) for node, values in measured.groupby("node")["factor"]}


def adjusted_latency(row: pd.Series, factors: dict[str, float], tiers: Sequence[str]) -> float:
    """A configuration's predicted latency (s) with each computing node's share scaled by its speed factor;
    transfers stay as predicted. ``row`` has ``<tier>_node`` and ``<tier>_compute_s`` for each of ``tiers``."""
    if not factors:
        return float("nan")
    compute = 0.0
    for tier in tiers:
        node = row.get(f"{tier}_node")
        part = row.get(f"{tier}_compute_s")
        if isinstance(node, str) and part is not None and not pd.isna(part):
            compute += float(part) * factors.get(node, 1.0)
    return float(row["predicted_transfer_s"]) + compute
