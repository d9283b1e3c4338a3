"""Which configurations a run measures: scission's top k plus the native ones, each once, labelled (pure).

Natives are ``<tier>-only`` for every tier of the topology that has a profiled node: all blocks on the
first resource of that tier, the device holding the input (and sending it on when it runs nothing).

Two nodes without a link between them (edge and cloud seen from the device of a chain device -> gateway
-> edge -> cloud) talk through the nodes in between, along the fewest-hops route of the topology's links
(`Routes`, the simulator's rule). The network table charges such a pair as scission charges a hop: the sum
of the links' RTTs, and the bandwidth of store-and-forward through every relay, 1 / sum(1 / bandwidth).
A native whose resource the device cannot reach at all (a disconnected topology) is listed in
``Prediction.unreachable`` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scission.network import NetworkLink, NetworkTable, Routes
from scission.partition import build_problem, model_input_size
from scission.problem import Configuration, evaluate
from scission.profiles import Profile
from scission.search import search
from testbed.errors import RunFailed, translated

__all__ = ["Chosen", "Prediction", "choose_device", "network_from_probes", "predict"]


@dataclass(frozen=True)
class Chosen:
    """A configuration to measure and its label ('top-1', 'edge-only', ...)."""

    label: str
    config: Configuration

    @property
    def id(self) -> str:
        return self.config.id


@dataclass(frozen=True)
class Prediction:
    """What to measure, in order, and the native labels left out because the device cannot reach them."""

    chosen: list[Chosen]
    unreachable: tuple[str, ...] = ()
    input_note: str | None = None  # set when the profiles disagree on the input size (which one is used)


def network_from_probes(probes: Sequence) -> NetworkTable:
    """A network table from link probes (measured RTT in ms, bandwidth in Mbit/s), one row per ordered pair.

    A probed direction is its own row. Any other pair is composed along its route (`Routes` over the probed
    links, in the probes' order, which is the topology's): RTT the sum of the links' RTTs, bandwidth
    1 / sum(1 / bandwidth). A pair whose route has an unmeasured direction, or no route, is left out.
    """
    measured = {(p.a, p.b): (p.measured_rtt_ms, p.measured_mbps) for p in probes
                if p.measured_mbps is not None and p.measured_rtt_ms is not None}
    links = [NetworkLink(a, b, rtt_ms, mbps) for (a, b), (rtt_ms, mbps) in measured.items()]
    routes = Routes((p.a, p.b) for p in probes)
    for a in routes.nodes:
        for b in routes.nodes:
            path = routes.path(a, b)
            if path is None or len(path) < 3:  # itself, or a direct link (its own row)
                continue
            hops = list(zip(path, path[1:], strict=False))
            if all(hop in measured for hop in hops):
                links.append(NetworkLink(a, b, sum(measured[h][0] for h in hops),
                                         1 / sum(1 / measured[h][1] for h in hops)))
    return NetworkTable(links)


def choose_device(device_nodes: Sequence[str], topology_name: str, wanted: str | None) -> str:
    """The device that sends the requests: ``wanted`` when given (it must be a device node), else the first."""
    if not device_nodes:
        raise RunFailed(f"topology {topology_name} has no node of its first tier (the device)")
    if wanted is not None:
        if wanted not in device_nodes:
            raise RunFailed(f"device {wanted!r} is not a device node of {topology_name} ({', '.join(device_nodes)})")
        return wanted
    return device_nodes[0]


def predict(profiles: Sequence[Profile], network: NetworkTable, model: str, device: str, tiers: Sequence[str],
            top_k: int, native: bool) -> Prediction:
    """Top k by scission's search over the ordered ``tiers`` plus the native configurations, each once.

    Only ``device``'s profile stands for the first tier (the other devices send no requests).
    """
    mine = [p for p in profiles if p.resource.tier != tiers[0] or p.resource.name == device]
    with translated(RunFailed, f"predicting {model}"):
        size = model_input_size([p for p in mine if p.resource.tier in tiers], model, tiers[0])
        problem = build_problem(mine, network, model, tuple(tiers), input_bytes=size.size_bytes)
        chosen = [Chosen(f"top-{i}", c) for i, c in enumerate(search(problem, top_k), 1)]
        unreachable = []
        if native:
            n = problem.block_count
            for index, tier in enumerate(problem.tiers):
                if not tier.candidates:
                    continue
                if index and (device, tier.candidates[0].name) not in problem.network:
                    unreachable.append(f"{tier.name}-only")
                    continue
                resources: list[str | None] = [None] * len(problem.tiers)
                counts = [0] * len(problem.tiers)
                resources[0] = device
                resources[index] = tier.candidates[0].name
                counts[index] = n
                config = evaluate(problem, resources, counts)
                if all(config.key != c.config.key for c in chosen):
                    chosen.append(Chosen(f"{tier.name}-only", config))
    return Prediction(chosen, tuple(unreachable), size.note)
