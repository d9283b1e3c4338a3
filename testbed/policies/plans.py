"""What several policies share: the best configuration for every device, and what there is to watch."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from testbed.errors import ConfigurationError, ResourceMissing
from testbed.policies.api import Hop, Planner, PolicySettings, Switch

__all__ = ["benchmark_work_s", "best_switches", "watched_hops", "watched_nodes"]


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
