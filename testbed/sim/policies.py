"""Policies: which split each device uses, and when it changes.

A policy sees the simulation only through its policy API (``now``, ``bandwidth_mbps``, ``load``,
``set_split``, ``call_every``, ``submit_work``, ``submit_transfer``) and asks scission for splits
(``World.best``); it never touches SimPy.

- static / native: one split for the whole run.
- oracle: the best split for the current conditions, re-decided at every condition change, free.
- periodic: every ``period_s`` each node on a device path runs a benchmark of ``overhead_s`` full-speed
  seconds (sharing the node with requests); when all have finished, it re-partitions with the
  conditions as they were when the benchmark started.
- adaptive (ours): every ``probe_period_s`` it sends a small probe over each link of each device path (and,
  with ``probe_nodes``, a short compute probe to each node), and keeps an EWMA of what they see. When an estimate departs from
  the value of the last decision by more than ``threshold_pct`` for ``confirm`` rounds in a row, and
  ``cooldown_s`` has passed since the last change, it re-partitions with the estimates (hysteresis:
  small or short-lived changes are ignored). Probes cost link and node time, but far less than a
  benchmark; they see contention as well as the conditions, as a real probe would.
"""

from __future__ import annotations

import math

from scission.units import bytes_per_s_to_mbps
from testbed.errors import ConfigurationError, ResourceMissing
from testbed.sim.spec import PolicySpec
from testbed.sim.world import Split, World

__all__ = ["Policy", "make_policy"]


class Policy:
    def __init__(self, spec: PolicySpec, world: World):
        self.spec = spec
        self.world = world

    @property
    def name(self) -> str:
        return self.spec.name

    def start(self, sim) -> None:
        raise NotImplementedError

    def on_conditions(self, sim) -> None:
        """Called after every condition change; only the oracle reacts."""

    def _best_all(self, sim, bandwidth_mbps, load) -> None:
        for device in self.world.devices:
            config = self.world.best(device, bandwidth_mbps, load, 1)
            if not config:
                raise ConfigurationError(f"scission found no feasible configuration for device {device}")
            sim.set_split(device, self.world.split_of(config[0]))


class Static(Policy):
    def resolve(self, bandwidth_mbps, load) -> dict[str, Split]:
        s = self.spec
        if s.kind.endswith("-only"):
            split = self.world.native_split(s.kind)
            return {d: split for d in self.world.devices}
        if s.configuration is not None:
            split = self.world.parse_split(s.configuration)
            self.world.check_split(split)
            return {d: split for d in self.world.devices}
        out = {}
        for d in self.world.devices:
            ranked = self.world.best(d, bandwidth_mbps, load, s.rank)
            if len(ranked) < s.rank:
                raise ConfigurationError(
                    f"policy {s.name}: rank {s.rank} asked, but scission found only {len(ranked)} configurations"
                )
            out[d] = self.world.split_of(ranked[s.rank - 1])
        return out

    def start(self, sim) -> None:
        for device, split in self.resolve(sim.bandwidth_mbps, sim.load).items():
            sim.set_split(device, split)


class Oracle(Policy):
    def start(self, sim) -> None:
        self._best_all(sim, sim.bandwidth_mbps, sim.load)

    def on_conditions(self, sim) -> None:
        self._best_all(sim, sim.bandwidth_mbps, sim.load)


def path_nodes(world: World) -> list[str]:
    seen: list[str] = []
    for path in world.paths.values():
        for n in path.nodes:
            if n is not None and n not in seen:
                seen.append(n)
    return seen


def benchmark_overhead_s(spec: PolicySpec, world: World) -> dict[str, float]:
    """Per node, the seconds one re-benchmark costs: given in the file, else the profile's wall time."""
    out = {}
    for node in path_nodes(world):
        if spec.overhead_s is not None:
            out[node] = spec.overhead_s
            continue
        nm = world.nodes[node]
        wall = nm.profile.run.get("wall_s") if isinstance(nm.profile.run, dict) else None
        if wall is None:
            raise ResourceMissing(
                f"policy {spec.name}: resource {nm.resource} (node {node}) has no benchmark wall time for "
                f"{world.model} (run['wall_s']); give overhead_s in the policy",
                node=node, resource=nm.resource,
            )
        out[node] = float(wall)
    return out


class Periodic(Policy):
    def __init__(self, spec: PolicySpec, world: World):
        super().__init__(spec, world)
        self.overhead = benchmark_overhead_s(spec, world)
        self.running = False

    def start(self, sim) -> None:
        self._best_all(sim, sim.bandwidth_mbps, sim.load)  # the profile in hand at t=0
        sim.call_every(self.spec.period_s, lambda: self._benchmark(sim))

    def _benchmark(self, sim) -> None:
        if self.running:
            return  # the previous benchmark has not finished: skip this period
        self.running = True
        sim.benchmarks += 1
        bandwidth, load = dict(sim.bandwidth_mbps), dict(sim.load)
        left = [len(self.overhead)]

        def finished(_elapsed_s: float) -> None:
            left[0] -= 1
            if left[0] == 0:
                self.running = False
                self._best_all(sim, bandwidth, load)

        for node, work in self.overhead.items():
            sim.submit_work(node, work, finished, overhead=True)


class Adaptive(Policy):
    def __init__(self, spec: PolicySpec, world: World):
        super().__init__(spec, world)
        hops: list[tuple[str, str]] = []
        for path in world.paths.values():
            present = [n for n in path.nodes if n is not None]
            for i, a in enumerate(present):
                for b in present[i + 1:]:
                    for hop in world.route(a, b):
                        if hop not in hops:
                            hops.append(hop)
        self.hops = hops
        self.nodes = path_nodes(world) if spec.probe_nodes else []
        self.estimate: dict = {}
        self.decided: dict = {}
        self.strikes = 0
        self.last_change_s = -math.inf
        self.in_round = False

    def start(self, sim) -> None:
        bandwidth, load = dict(sim.bandwidth_mbps), dict(sim.load)
        self._decide(sim, bandwidth, load)
        sim.call_every(self.spec.probe_period_s, lambda: self._probe(sim))

    def _decide(self, sim, bandwidth, load) -> None:
        self._best_all(sim, bandwidth, load)
        self.decided = {**{("bw", h): bandwidth[h] for h in self.hops}, **{("load", n): load.get(n, 0.0) for n in self.nodes}}
        self.estimate = dict(self.decided)
        self.last_change_s = sim.now

    def _probe(self, sim) -> None:
        if self.in_round:
            return
        self.in_round = True
        s = self.spec
        left = [len(self.hops) + len(self.nodes)]
        seen: dict = {}

        def collect(key, value):
            seen[key] = value
            left[0] -= 1
            if left[0] == 0:
                self.in_round = False
                self._update(sim, seen)

        for hop in self.hops:
            sim.submit_transfer(hop, s.probe_bytes,
                                lambda el, hop=hop: collect(("bw", hop), bytes_per_s_to_mbps(s.probe_bytes / max(el, 1e-12))))
        for node in self.nodes:
            cap = self.world.nodes[node].capacity

            def on_node(el, node=node, cap=cap):
                rate = s.probe_work_s / max(el, 1e-12)  # share of a core the probe got
                collect(("load", node), max(0.0, min(0.99, 1 - rate / cap)) if rate < 1 else 0.0)

            sim.submit_work(node, s.probe_work_s, on_node)

    def _update(self, sim, seen: dict) -> None:
        a = self.spec.alpha
        for key, value in seen.items():
            self.estimate[key] = a * value + (1 - a) * self.estimate.get(key, value)
        moved = False
        for key, value in self.estimate.items():
            base = self.decided.get(key, value)
            if key[0] == "bw":
                moved |= abs(value - base) / base * 100 > self.spec.threshold_pct
            else:  # load: compare the single-request rate it leaves, (1 - load)
                moved |= abs((1 - value) - (1 - base)) / max(1 - base, 1e-6) * 100 > self.spec.threshold_pct
        self.strikes = self.strikes + 1 if moved else 0
        if self.strikes >= self.spec.confirm and sim.now - self.last_change_s >= self.spec.cooldown_s:
            self.strikes = 0
            bandwidth = dict(sim.bandwidth_mbps)  # links it does not probe keep their nominal value
            for key, value in self.estimate.items():
                if key[0] == "bw":
                    bandwidth[key[1]] = value
            load = {key[1]: value for key, value in self.estimate.items() if key[0] == "load"}
            nominal = {h: self.world.nominal_mbps(h) for h in sim.bandwidth_mbps}
            for h in nominal:
                if h not in self.hops:
                    bandwidth[h] = nominal[h]
            estimate = dict(self.estimate)
            self._decide(sim, bandwidth, load)
            self.estimate = estimate


def make_policy(spec: PolicySpec, world: World) -> Policy:
    if spec.kind == "static" or spec.kind.endswith("-only"):
        return Static(spec, world)
    if spec.kind == "oracle":
        return Oracle(spec, world)
    if spec.kind == "periodic":
        return Periodic(spec, world)
    if spec.kind == "adaptive":
        return Adaptive(spec, world)
    raise ConfigurationError(f"unknown policy kind {spec.kind!r}; use one of static, {', '.join(t + '-only' for t in world.tiers)}, "
                             "oracle, periodic, adaptive")
