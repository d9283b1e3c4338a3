"""Adaptive (ours): cheap probes, a smoothed estimate, and hysteresis before paying for a re-partition.

Every ``probe_period_s`` it sends ``probe_bytes`` over each link of each device path (and, with
``probe_nodes``, ``probe_work_s`` of work to each node) and keeps an EWMA (weight ``alpha``) of what
the probes see. When an estimate departs from the value of the last decision by more than
``threshold_pct`` for ``confirm`` rounds in a row, and ``cooldown_s`` has passed since the last
change, it re-partitions with the estimates: small or short-lived changes are ignored. Probes cost
link and node time, far less than a benchmark, and see contention as well as the conditions, as a
real probe would. A round starts only when the previous one has finished.

With ``refresh: benchmark`` or ``recalibrate`` a trigger does not re-partition at once: it first asks
for that refresh round on every watched node (priced as periodic's) and re-partitions when it is done,
with the probed bandwidths and the node loads the round measured. The default, ``none``, trusts the
probes alone.
"""

from __future__ import annotations

import math

from testbed.policies.api import (
    Action,
    BenchmarkDone,
    Every,
    Hop,
    LinkProbed,
    NodeProbed,
    Observation,
    Planner,
    Policy,
    PolicySettings,
    ProbeLink,
    ProbeNode,
    Started,
    Tick,
)
from testbed.policies.plans import best_switches, refresh_action, refresh_mode, watched_hops, watched_nodes

__all__ = ["Adaptive", "load_from_speed"]

TIMER = "probe"


def load_from_speed(speed: float, capacity: float) -> float:
    """Background load a compute probe implies: the share of the node's capacity it did not get.

    A probe that ran at full speed (``speed`` >= 1) says nothing about idle cores: load 0. The estimate
    stops at 0.99 so that the search still sees a node that can serve.
    """
    if speed >= 1:
        return 0.0
    return max(0.0, min(0.99, 1 - speed / capacity))


class Adaptive(Policy):
    def __init__(self, settings: PolicySettings, planner: Planner) -> None:
        super().__init__(settings, planner)
        self.hops: list[Hop] = watched_hops(planner)
        self.nodes: list[str] = watched_nodes(planner) if settings.probe_nodes else []
        self.nominal = dict(planner.nominal_mbps())
        # keys: ("bw", hop) in Mbit/s, ("load", node) in 0..1
        self.estimate: dict = {}
        self.decided: dict = {}
        self.strikes = 0
        self.last_change_s = -math.inf
        self.waiting: set = set()  # keys of the current round's probes still out; empty: no round
        self.seen: dict = {}
        self.refresh = refresh_mode(settings, "none")
        self.round = refresh_action(self.refresh, settings, planner)
        self.refreshing: dict | None = None  # bandwidth estimates waiting for the refresh round's answer

    def start(self, obs: Started) -> list[Action]:
        actions = self._decide(obs.now_s, dict(obs.conditions.bandwidth_mbps), dict(obs.conditions.load))
        return actions + [Every(self.settings.probe_period_s, TIMER)]

    def observe(self, obs: Observation) -> list[Action]:
        if isinstance(obs, Tick) and obs.timer == TIMER:
            return self._probe()
        if isinstance(obs, LinkProbed):
            return self._collect(obs.now_s, ("bw", obs.hop), obs.bandwidth_mbps)
        if isinstance(obs, NodeProbed):
            return self._collect(obs.now_s, ("load", obs.node), load_from_speed(obs.speed, self.planner.capacity(obs.node)))
        if isinstance(obs, BenchmarkDone) and self.refreshing is not None:
            bandwidth, self.refreshing = self.refreshing, None
            # the round measured every node: what it saw replaces the probes' load estimates
            load = {node: obs.conditions.load.get(node, 0.0) for node in watched_nodes(self.planner)}
            estimate = dict(self.estimate)
            actions = self._decide(obs.now_s, bandwidth, load)
            self.estimate = estimate
            return actions
        return []

    def _decide(self, now_s: float, bandwidth_mbps: dict, load: dict) -> list[Action]:
        actions: list[Action] = best_switches(self.planner, bandwidth_mbps, load)
        self.decided = {
            **{("bw", h): bandwidth_mbps.get(h, self.nominal[h]) for h in self.hops},
            **{("load", n): load.get(n, 0.0) for n in self.nodes},
        }
        self.estimate = dict(self.decided)
        self.last_change_s = now_s
        return actions

    def _probe(self) -> list[Action]:
        if self.waiting or not (self.hops or self.nodes):
            return []  # the previous round is still out: skip this period
        s = self.settings
        self.waiting = {("bw", h) for h in self.hops} | {("load", n) for n in self.nodes}
        self.seen = {}
        return [ProbeLink(h, s.probe_bytes) for h in self.hops] + [ProbeNode(n, s.probe_work_s) for n in self.nodes]

    def _collect(self, now_s: float, key: tuple, value: float) -> list[Action]:
        if key not in self.waiting:
            return []  # not a probe of this round (a driver may report others)
        self.waiting.discard(key)
        self.seen[key] = value
        if self.waiting:
            return []
        return self._update(now_s, self.seen)

    def _update(self, now_s: float, seen: dict) -> list[Action]:
        s = self.settings
        a = s.alpha
        for key, value in seen.items():
            self.estimate[key] = a * value + (1 - a) * self.estimate.get(key, value)
        moved = False
        for key, value in self.estimate.items():
            base = self.decided.get(key, value)
            if key[0] == "bw":
                moved |= abs(value - base) / base * 100 > s.threshold_pct
            else:  # load: compare the single-request rate it leaves, (1 - load)
                moved |= abs((1 - value) - (1 - base)) / max(1 - base, 1e-6) * 100 > s.threshold_pct
        self.strikes = self.strikes + 1 if moved else 0
        if self.strikes < s.confirm or now_s - self.last_change_s < s.cooldown_s or self.refreshing is not None:
            return []
        self.strikes = 0
        bandwidth = dict(self.nominal)  # links it does not probe keep their nominal value
        for key, value in self.estimate.items():
            if key[0] == "bw":
                bandwidth[key[1]] = value
        if self.round is not None:
            self.refreshing = bandwidth  # decide when the round has measured the nodes
            return [self.round()]
        load = {key[1]: value for key, value in self.estimate.items() if key[0] == "load"}
        estimate = dict(self.estimate)
        actions = self._decide(now_s, bandwidth, load)
        self.estimate = estimate  # the smoothed history survives the decision
        return actions
