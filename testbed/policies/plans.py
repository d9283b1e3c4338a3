"""What several policies share: the best configuration for every device, and what there is to watch."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from testbed.errors import ConfigurationError, ResourceMissing
from testbed.policies.api import Benchmark, Hop, Planner, PolicySettings, Recalibrate, Switch

__all__ = ["REFRESH_MODES", "benchmark_work_s", "best_switches", "recalibrate_work_s", "refresh_action",
           "refresh_mode", "switch_work_s", "watched_hops", "watched_nodes"]

REFRESH_MODES = ("benchmark", "recalibrate", "none")
"""How a policy refreshes what it knows of the nodes: a full re-benchmark, a recalibration (a few whole
passes, rescaled), or not at all (adaptive's default: its probes only)."""


def best_switches(planner: Planner, bandwidth_mbps: Mapping[Hop, float], load: Mapping[str, float]) -> list[Switch]:
    """Switch every device to scission's best configuration under these conditions."""
    out = []
    for device in planner.devices:
        ranked = planner.best(device, bandwidth_mbps, load, 1)
        if not ranked:
            raise ConfigurationError(f"scission found no feasible configuration for device {device}")
        out.append(Switch(device, ranked[0]))
    return out


def watched_nodes(planner: Planner) -> list[str]:
    """Every node some device may run blocks on, each once, in device then tier order."""
    return _first_seen(planner.nodes(device) for device in planner.devices)


def watched_hops(planner: Planner) -> list[Hop]:
    """Every directed link some device's requests may cross, each once, in device then path order."""
    return _first_seen(planner.hops(device) for device in planner.devices)


def _first_seen(groups: Iterable[Iterable]) -> list:
    out: list = []
    for group in groups:
        for item in group:
            if item not in out:
                out.append(item)
    return out


def benchmark_work_s(settings: PolicySettings, planner: Planner) -> dict[str, float]:
    """Per watched node, the seconds one re-benchmark costs: ``overhead_s`` if given, else the planner's figure."""
    overhead_s = settings.overhead_s
    if overhead_s is not None:
        return {node: overhead_s for node in watched_nodes(planner)}
    out = {}
    for node in watched_nodes(planner):
        try:
            out[node] = planner.benchmark_work_s(node)
        except ResourceMissing as exc:  # say which policy needs it, and how to do without
            raise ResourceMissing(f"policy {settings.name}: {exc}; give overhead_s in the policy",
                                  node=exc.node, resource=exc.resource) from None
    return out


def recalibrate_work_s(settings: PolicySettings, planner: Planner) -> dict[str, float]:
    """Per watched node, the seconds one recalibration costs: ``overhead_s`` if given, else the planner's."""
    overhead_s = settings.overhead_s
    if overhead_s is not None:
        return {node: overhead_s for node in watched_nodes(planner)}
    return {node: planner.recalibrate_work_s(node) for node in watched_nodes(planner)}


def refresh_mode(settings: PolicySettings, default: str) -> str:
    """The policy's ``refresh`` (``REFRESH_MODES``), ``default`` when it gives none."""
    mode = getattr(settings, "refresh", None) or default
    if mode not in REFRESH_MODES:
        raise ConfigurationError(f"policy {settings.name}: refresh {mode!r} is not one of {', '.join(REFRESH_MODES)}")
    return mode


def refresh_action(mode: str, settings: PolicySettings, planner: Planner):
    """A function returning the refresh round to ask for (costs priced once, now); None for mode 'none'."""
    if mode == "none":
        return None
    if mode == "recalibrate":
        work = recalibrate_work_s(settings, planner)
        return lambda: Recalibrate(work)
    work = benchmark_work_s(settings, planner)
    return lambda: Benchmark(work)


def switch_work_s(planner: Planner, device: str, old_id: str | None, new_id: str) -> dict[str, float]:
    """Per node whose block range changes from ``old_id`` to ``new_id``, the seconds compiling its new range costs.

    A node that keeps its range, or stops running blocks, pays nothing; nor does the first deployment
    (``old_id`` None: compiled before the run). Nodes whose compile time is 0 (eager profiles) are left out.
    """
    if old_id is None or old_id == new_id:
        return {}
    old = planner.ranges(device, old_id)
    out = {}
    for node, (first, last) in planner.ranges(device, new_id).items():
        if old.get(node) == (first, last):
            continue
        work = planner.compile_work_s(node, first, last)
        if work > 0:
            out[node] = work
    return out
