"""The simulated world: topology nodes bound to profiled resources, device paths, splits and hop plans.

A *split* gives each of the topology's ordered tiers (e.g. device, edge, cloud) a contiguous, possibly empty run of blocks and applies to
every device; a *hop plan* is that split on one device's path: compute stages on nodes and transfer
stages on directed links, in order. Searching for splits is scission's job (``scission.partition``):
this module only builds the problem it searches, with the simulator's own physics, so that a split's
zero-load simulated latency equals its scission cost exactly:

- a hop costs ``rtt_ms / 2`` of propagation (one way) plus ``bytes / bandwidth`` per link on its route
  (store-and-forward per link), so the problem's network table holds the route's round trip as ``rtt_ms``
  with ``rtt_share`` 0.5 (one way; `testbed run`'s prediction, like the original tool, charges a whole
  round trip per hop) and the harmonic bandwidth of the route;
- a block's time is its profile time divided by the node's speed and by its single-request rate under
  background load, ``min(1, capacity * (1 - load))``;
- a compute stage (one tier's block range, one compiled call) adds the profile's ``call_overhead_s`` once,
  scaled alike (block times of compiled profiles are net of it; 0 for legacy and version-1 profiles).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scission.network import NetworkLink, NetworkTable, Routes
from scission.partition import candidate_from_model, model_input_size, search_problem
from scission.problem import (
    BlockLayers,
    Configuration,
    Problem,
    Tier,
    block_config_id,
    block_ranges,
    config_id,
    evaluate,
    parse_config_id,
)
from scission.profiles import ModelProfile, Profile
from scission.units import BYTES_PER_S_PER_MBPS
from testbed.errors import ConfigurationError, ResourceMissing, SimulationFileError, translated

__all__ = [
    "DevicePath",
    "HopPlan",
    "NodeModel",
    "Split",
    "Stage",
    "World",
    "mathis_cap_bytes_per_s",
]

log = logging.getLogger(__name__)
MSS_BYTES = 1460
_SEARCH_CACHE_SIZE = 4096


def mathis_cap_bytes_per_s(rtt_ms: float, loss_pct: float) -> float:
    """Per-flow TCP throughput ceiling under random loss (Mathis et al. 1997); inf without loss."""
    if loss_pct <= 0:
        return math.inf
    rtt_s = max(rtt_ms, 0.1) / 1000
    return MSS_BYTES / rtt_s * 1.22 / math.sqrt(loss_pct / 100)


@dataclass(frozen=True)
class NodeModel:
    """A topology node as the simulator sees it: PS capacity (requests at full speed) and speed factor."""

    name: str
    tier: str
    resource: str
    capacity: float
    speed: float
    profile: ModelProfile


@dataclass(frozen=True)
class Split:
    """Block counts per ordered tier (e.g. device, edge, cloud); the identity of a configuration across devices.

    ``layers`` (the model's block -> layer ranges) lets it print the canonical layer-range id; without it
    the id is the prefixed block form, which every parser accepts too.
    """

    tiers: tuple[str, ...]
    counts: tuple[int, ...]
    layers: BlockLayers | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.tiers) != len(self.counts):
            raise ConfigurationError(f"a split needs one block count per tier ({', '.join(self.tiers)}), "
                                     f"got {list(self.counts)}")

    @property
    def id(self) -> str:
        """The canonical configuration id: layer ranges, as ``scission predict`` prints them."""
        if self.layers is None:
            return self.block_id
        return config_id(self.tiers, self.counts, self.layers)

    @property
    def block_id(self) -> str:
        """'blocks:device:0-9,edge:10-65'."""
        return block_config_id(self.tiers, self.counts)

    @property
    def stream_key(self) -> str:
        """The split's name in random-stream keys: unprefixed block ranges, as before issue 12, so that a
        seed draws the same numbers whatever the id format."""
        return block_ranges(self.tiers, self.counts)

    @classmethod
    def parse(cls, text: str, tiers: Sequence[str], layers: BlockLayers, unprefixed: str = "layers") -> Split:
        """A configuration id ('device:0-87,edge:88-92' layer ranges, 'blocks:device:0-9,edge:10-65') or
        '<tier>-only'; ``unprefixed="blocks"`` only for files written before issue 12."""
        try:
            counts = parse_config_id(text, tuple(tiers), layers, unprefixed)
        except ValueError as exc:
            raise ConfigurationError(f"unknown configuration {text.strip()!r}: {exc}") from None
        return cls(tuple(tiers), counts, layers)


@dataclass(frozen=True)
class Stage:
    """One step of a hop plan: compute blocks first..last on a node, or carry bytes over a directed link."""

    kind: str  # "compute" | "link"
    node: str | None = None
    first_block: int = -1
    last_block: int = -1
    link: tuple[str, str] | None = None
    size_bytes: float = 0.0


@dataclass(frozen=True)
class HopPlan:
    device: str
    split: Split
    stages: tuple[Stage, ...]


@dataclass(frozen=True)
class DevicePath:
    """Per tier of the topology, in order, the node a device's requests may use (None: none reachable)."""

    device: str
    nodes: tuple[str | None, ...]


class World:
    """Topology + profiles + node->resource mapping for one model; pure (numpy only, no SimPy)."""

    def __init__(
        self,
        topology,
        profiles: Sequence[Profile],
        resources: Mapping[str, str],
        model: str,
        input_bytes: float | None = None,
        overrides: Mapping | None = None,
        profiles_label: str = "the profile folder",
    ):
        self.topology = topology
        self._graph = Routes((lk.a, lk.b) for lk in topology.links)  # the run's prediction routes alike
        self.tiers: tuple[str, ...] = tuple(topology.tiers)
        self.model = model.lower()
        overrides = dict(overrides or {})
        by_label = {p.resource.label: p for p in profiles}
        for key in list(resources) + list(overrides):
            if topology.node(key) is None and key not in self.tiers:
                known = ", ".join(n.name for n in topology.nodes)
                raise SimulationFileError(f"resources/nodes: {key!r} is not a node of topology {topology.name} (nodes: {known})")
        self.nodes: dict[str, NodeModel] = {}
        for node in topology.nodes:
            label = resources.get(node.name, resources.get(node.tier))
            if label is None:
                continue  # an unmapped node can still forward traffic but cannot run blocks
            profile = by_label.get(label)
            if profile is None:
                raise ResourceMissing(
                    f"node {node.name} uses resource {label!r}, which {profiles_label} does not have "
                    f"(it has: {', '.join(sorted(by_label))})",
                    node=node.name, resource=label,
                )
            mp = profile.models.get(self.model)
            if mp is None:
                raise ResourceMissing(
                    f"resource {label} (node {node.name}) has no profile of model {self.model!r} "
                    f"(it has: {', '.join(sorted(profile.models))})",
                    node=node.name, resource=label,
                )
            ov = overrides.get(node.name) or overrides.get(node.tier)
            capacity = ov.capacity if ov is not None and ov.capacity is not None else max(1.0, node.cpus)
            speed = ov.speed if ov is not None else 1.0
            self.nodes[node.name] = NodeModel(node.name, node.tier, label, capacity, speed, mp)
        counts = {n.resource: len(n.profile.blocks) for n in self.nodes.values()}
        if len(set(counts.values())) > 1:
            raise ResourceMissing(f"the resources profile {self.model} with different block counts: {counts}")
        with translated(ResourceMissing, f"the layer ranges of {self.model}'s blocks"):
            layer_maps = {n.resource: BlockLayers.of(n.profile.blocks) for n in self.nodes.values()}
        if len(set(layer_maps.values())) > 1:
            raise ResourceMissing(f"the resources profile {self.model} with different layer ranges per block "
                                  f"({', '.join(sorted(layer_maps))}); configuration ids would be ambiguous")
        devices = [n.name for n in topology.nodes if n.tier == self.tiers[0] and n.name in self.nodes]
        if not devices:
            raise ResourceMissing(f"no {self.tiers[0]} node of the topology is mapped to a resource in resources")
        self.block_count = next(iter(counts.values()))
        self.layers: BlockLayers = layer_maps[self.nodes[devices[0]].resource]
        used = [p for p in profiles if p.resource.label in {n.resource for n in self.nodes.values()}]
        size = model_input_size(used, self.model, self.tiers[0], input_bytes)
        if size.note:
            log.warning("%s (set input_bytes to choose)", size.note)
        self.input_bytes = size.size_bytes
        self.input_note = size.note
        self.paths = {d: self._device_path(d) for d in devices}
        self._routes: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
        # per direction (a, b): (bandwidth_mbps, rtt_ms) measured by probes, replacing the topology's figures
        self.link_overrides: dict[tuple[str, str], tuple[float, float]] = {}
        self._search_cache: dict[tuple, list[Configuration]] = {}

    # --- structure --------------------------------------------------------------------------------

    @property
    def devices(self) -> list[str]:
        return list(self.paths)

    def _device_path(self, device: str) -> DevicePath:
        reach = self._graph.paths_from(device)
        chosen: list[str | None] = [device]
        for tier in self.tiers[1:]:
            options = [n for n in reach if n in self.nodes and self.nodes[n].tier == tier]
            options.sort(key=lambda n: (len(reach[n]), n))
            chosen.append(options[0] if options else None)
        return DevicePath(device, tuple(chosen))

    def route(self, a: str, b: str) -> tuple[tuple[str, str], ...]:
        """Directed links from a to b along the fewest hops."""
        key = (a, b)
        if key not in self._routes:
            seq = self._graph.path(a, b)
            if seq is None:
                raise ConfigurationError(f"node {b} cannot be reached from node {a} in topology {self.topology.name}")
            self._routes[key] = tuple(zip(seq, seq[1:], strict=False))
        return self._routes[key]

    def nominal_mbps(self, hop: tuple[str, str]) -> float:
        """Bandwidth of one direction before any condition trace: a probe's figure, else the topology's."""
        if hop in self.link_overrides:
            return self.link_overrides[hop][0]
        return self.topology.link(*hop).bandwidth_mbps

    def rtt_ms(self, hop: tuple[str, str]) -> float:
        if hop in self.link_overrides:
            return self.link_overrides[hop][1]
        return self.topology.link(*hop).rtt_ms

    def loss_pct(self, hop: tuple[str, str]) -> float:
        return self.topology.link(*hop).loss_pct

    # --- splits and plans -------------------------------------------------------------------------

    def parse_split(self, text: str, unprefixed: str = "layers") -> Split:
        """A configuration id or '<tier>-only' on this world's tiers (ConfigurationError when it is not one)."""
        return Split.parse(text, self.tiers, self.layers, unprefixed)

    def split(self, counts: Sequence[int]) -> Split:
        """The split that runs counts[i] blocks on tier i (one count per tier of the topology)."""
        counts = tuple(int(c) for c in counts)
        if sum(counts) != self.block_count or any(c < 0 for c in counts):
            raise ConfigurationError(f"block counts {list(counts)} must be >= 0 and add up to {self.block_count}")
        return Split(self.tiers, counts, self.layers)

    def native_split(self, kind: str) -> Split:
        """The split of a native policy kind, '<tier>-only' for a tier of this topology."""
        tier = kind.removesuffix("-only")
        if not kind.endswith("-only") or tier not in self.tiers:
            raise ConfigurationError(
                f"policy kind {kind!r} names no tier of topology {self.topology.name}; native kinds here: "
                f"{', '.join(t + '-only' for t in self.tiers)}"
            )
        split = self.parse_split(kind)
        self.check_split(split)
        return split

    def check_split(self, split: Split) -> None:
        for device, path in self.paths.items():
            for tier, count, node in zip(self.tiers, split.counts, path.nodes, strict=True):
                if count and node is None:
                    raise ConfigurationError(
                        f"configuration {split.id} runs blocks on the {tier} tier, but device {device} reaches no "
                        f"{tier} node with a resource"
                    )

    def plan(self, device: str, split: Split, reply: bool = False) -> HopPlan:
        """The split's stages on this device's path; with reply, the result is carried back to the device."""
        path = self.paths[device]
        stages: list[Stage] = []
        start = 0
        current = device
        payload = self.input_bytes
        for node, count in zip(path.nodes, split.counts, strict=True):
            if count == 0:
                continue
            if node is None:
                raise ConfigurationError(f"configuration {split.id} needs a node that device {device} cannot reach")
            if node != current:
                for hop in self.route(current, node):
                    stages.append(Stage("link", link=hop, size_bytes=payload))
                current = node
            stages.append(Stage("compute", node=node, first_block=start, last_block=start + count - 1))
            start += count
            payload = float(self.nodes[node].profile.blocks[start - 1].output_bytes)
        if reply and current != device:
            for hop in self.route(current, device):
                stages.append(Stage("link", link=hop, size_bytes=payload))
        return HopPlan(device, split, tuple(stages))

    # --- the problem scission searches ------------------------------------------------------------

    def problem(self, device: str, bandwidth_mbps: Mapping, load: Mapping) -> Problem:
        """The device's partition problem under the given conditions (candidates named by node)."""
        path = self.paths[device]
        tiers = []
        for tier, node in zip(self.tiers, path.nodes, strict=True):
            if node is None:
                tiers.append(Tier(tier, ()))
                continue
            nm = self.nodes[node]
            rate = min(1.0, nm.capacity * (1 - load.get(node, 0.0))) * nm.speed
            cand = candidate_from_model(node, nm.profile)
            scaled = tuple(t / rate for t in cand.latencies_s)
            tiers.append(Tier(tier, (type(cand)(node, scaled, cand.output_bytes, cand.first_layers, cand.last_layers,
                                                cand.call_overhead_s / rate),)))
        links = []
        present = [n for n in path.nodes if n is not None]
        for i, a in enumerate(present):
            for b in present[i + 1:]:
                route_rtt_ms, inv_bw = 0.0, 0.0
                for hop in self.route(a, b):
                    rtt_ms = self.rtt_ms(hop)
                    bw = bandwidth_mbps.get(hop, self.nominal_mbps(hop)) * BYTES_PER_S_PER_MBPS
                    bw = min(bw, mathis_cap_bytes_per_s(rtt_ms, self.loss_pct(hop)))
                    route_rtt_ms += rtt_ms
                    inv_bw += 1 / bw
                # half the round trip: what the engine charges a transfer (one-way propagation per link)
                links.append(NetworkLink(a, b, route_rtt_ms, 1 / inv_bw / BYTES_PER_S_PER_MBPS, rtt_share=0.5))
        return Problem(tuple(tiers), NetworkTable(links), input_bytes=self.input_bytes)

    def best(self, device: str, bandwidth_mbps: Mapping, load: Mapping, k: int = 1) -> list[Configuration]:
        """scission's top-k for the device under these conditions (cached on values rounded to 4 digits)."""
        path = self.paths[device]
        relevant = []
        for a in (n for n in path.nodes if n is not None):
            relevant.append(("load", a, round(load.get(a, 0.0), 4)))
        for hop in sorted(bandwidth_mbps):
            relevant.append((hop, float(f"{bandwidth_mbps[hop]:.4g}")))
        key = (device, k, tuple(relevant))
        if key not in self._search_cache:
            if len(self._search_cache) >= _SEARCH_CACHE_SIZE:
                self._search_cache.clear()  # a random walk rarely repeats: keep memory bounded
            with translated(ConfigurationError, f"scission cannot partition {self.model} for device {device}"):
                self._search_cache[key] = search_problem(self.problem(device, bandwidth_mbps, load), k)
        return self._search_cache[key]

    def split_of(self, config: Configuration) -> Split:
        """The split of one of scission's configurations for this world (same tiers, in order)."""
        tiers = tuple(p.tier for p in config.placements)
        if tiers != self.tiers:
            raise ConfigurationError(f"configuration {config.id} is over tiers {', '.join(tiers)}, "
                                     f"not this topology's {', '.join(self.tiers)}")
        return Split(self.tiers, config.block_counts, self.layers)

    def predicted_s(self, device: str, split: Split, bandwidth_mbps: Mapping, load: Mapping) -> float:
        """Zero-load latency of a split under the given conditions (scission's evaluate on our problem)."""
        problem = self.problem(device, bandwidth_mbps, load)
        path = self.paths[device]
        return evaluate(problem, list(path.nodes), list(split.counts)).latency_s

    # --- block-time sampling ----------------------------------------------------------------------

    def mean_work_s(self, node: str, first: int, last: int) -> float:
        """Mean full-speed seconds of blocks first..last on a node (for offered-load checks)."""
        nm = self.nodes[node]
        return (sum(b.latency.mean_s for b in nm.profile.blocks[first:last + 1]) + nm.profile.call_overhead_s) / nm.speed

    def service_sampler(self, node: str, first: int, last: int, kind: str, cv: float):
        """(constant_work_s or None, draw(rng, n) -> np.ndarray) for blocks first..last on a node, the call
        overhead included once (a constant: it is measured apart, as a median)."""
        const, draw = self._block_sampler(node, first, last, kind, cv)
        nm = self.nodes[node]
        overhead = nm.profile.call_overhead_s / nm.speed
        if not overhead:
            return const, draw
        if draw is None:
            return const + overhead, None
        return None, lambda rng, n: draw(rng, n) + overhead

    def _block_sampler(self, node: str, first: int, last: int, kind: str, cv: float):
        nm = self.nodes[node]
        blocks = nm.profile.blocks[first:last + 1]
        has_samples = all(b.latency.samples_s for b in blocks)
        has_std = all(b.latency.std_s is not None for b in blocks)
        if kind == "auto":
            kind = "empirical" if has_samples else ("lognormal" if has_std else "deterministic")
        if kind == "empirical" and not has_samples:
            raise ResourceMissing(
                f"service 'empirical' needs timed samples, but resource {nm.resource} has only summary figures for "
                f"{self.model}; use service: lognormal or deterministic", node=node, resource=nm.resource,
            )
        speed = nm.speed
        if kind == "deterministic":
            return sum(b.latency.typical_s for b in blocks) / speed, None
        mean = sum(b.latency.mean_s for b in blocks) / speed
        if kind == "exponential":
            return None, lambda rng, n: rng.exponential(mean, n)
        if kind == "lognormal":
            if has_std and any(b.latency.std_s for b in blocks):
                sd = math.sqrt(sum(b.latency.std_s**2 for b in blocks)) / speed
            else:
                sd = cv * mean
            if mean <= 0 or sd <= 0:
                return mean, None
            sigma2 = math.log1p((sd / mean) ** 2)
            mu = math.log(mean) - sigma2 / 2
            sigma = math.sqrt(sigma2)
            return None, lambda rng, n: rng.lognormal(mu, sigma, n)
        arrays = [np.asarray(b.latency.samples_s, dtype=float) / speed for b in blocks]

        def draw(rng: np.random.Generator, n: int) -> np.ndarray:
            total = np.zeros(n)
            for arr in arrays:
                total += arr[rng.integers(0, len(arr), n)]
            return total

        return None, draw


def load_world(spec) -> World:
    """Load the topology and profiles a SimulationSpec names; errors from other packages become TestbedError."""
    from emulator.topology import load_topology
    from scission.profile_folder import load_profiles

    with translated(SimulationFileError, "topology"):
        topology = load_topology(spec.topology)
    with translated(SimulationFileError, "profiles"):
        profiles = load_profiles(spec.profiles)
    return World(topology, profiles, spec.resources, spec.model, spec.input_bytes, spec.nodes,
                 profiles_label=f"profile folder {Path(spec.profiles)}")
