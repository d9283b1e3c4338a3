"""A fake planner and a toy second driver: the policy API driven with no SimPy and no simulator types.

``FakePlanner`` answers like the simulator's world ``test_sim_policies.world()`` (one block; device
1 s, edge 0.1 s, cloud 0.05 s; 100 kB input over device-edge-cloud links of 8 Mbit/s and 100 ms RTT)
with a closed-form cost per native configuration. ``ToyDriver`` is a plain event loop over a scripted
network: what a live controller does with real agents, in thirty lines.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Mapping

from scission.units import bytes_per_s_to_mbps, mbps_to_bytes_per_s
from testbed.errors import ConfigurationError, ResourceMissing
from testbed.policies.api import (
    Benchmark,
    BenchmarkDone,
    Conditions,
    ConditionsChanged,
    Every,
    LinkProbed,
    NodeProbed,
    Policy,
    ProbeLink,
    ProbeNode,
    Started,
    Switch,
    Tick,
)

UP, ONWARD = ("device", "edge"), ("edge", "cloud")
HOPS = (UP, ("edge", "device"), ONWARD, ("cloud", "edge"))
INPUT_BYTES, ONE_WAY_S = 100_000, 0.05
EDGE, DEVICE, CLOUD = "edge:0-0", "device:0-0", "cloud:0-0"


class FakePlanner:
    """One device on a device-edge-cloud chain; any tier list (natives of every tier validate)."""

    def __init__(self, tiers=("device", "edge", "cloud"), devices=("device",), wall_s=None, capacity=1.0):
        self.tiers = tuple(tiers)
        self.devices = tuple(devices)
        self.wall_s = dict(wall_s or {})
        self._capacity = capacity
        self.asked: list[tuple] = []  # (device, bandwidth, load) of every best() call

    def nodes(self, device):
        return (device, "edge", "cloud")

    def hops(self, device):
        return (UP, ONWARD)

    def nominal_mbps(self):
        return {hop: 8.0 for hop in HOPS}

    def capacity(self, node):
        return self._capacity

    def benchmark_work_s(self, node):
        if node not in self.wall_s:
            raise ResourceMissing(f"resource fake (node {node}) has no benchmark wall time", node=node, resource="fake")
        return self.wall_s[node]

    def recalibrate_work_s(self, node):
        return self.benchmark_work_s(node) / 10

    def ranges(self, device, config_id):
        return {config_id.split(":")[0]: (0, 0)}

    def compile_work_s(self, node, first_block, last_block):
        return 0.0  # the fake's world is eager

    def best(self, device, bandwidth_mbps: Mapping, load: Mapping, k=1):
        self.asked.append((device, dict(bandwidth_mbps), dict(load)))

        def rate(node):
            return min(1.0, self._capacity * (1 - load.get(node, 0.0)))

        def upload_s(*hops):
            return sum(INPUT_BYTES / mbps_to_bytes_per_s(bandwidth_mbps.get(h, 8.0)) for h in hops)

        cost = {
            DEVICE: 1.0 / rate("device"),
            EDGE: ONE_WAY_S + upload_s(UP) + 0.1 / rate("edge"),
            CLOUD: 2 * ONE_WAY_S + upload_s(UP, ONWARD) + 0.05 / rate("cloud"),
        }
        return sorted(cost, key=cost.get)[:k]

    def validate(self, config_id):
        if config_id.endswith("-only") and config_id[:-5] in self.tiers:
            return f"{config_id[:-5]}:0-0"
        if config_id in (EDGE, DEVICE, CLOUD):
            return config_id
        raise ConfigurationError(f"unknown configuration {config_id!r}")


class ToyDriver:
    """A second driver of the same policies: its own clock, a scripted network, idle nodes.

    ``bandwidth_at(t, hop)`` is the true bandwidth; ``changes_s`` the times it changes (reported as
    ``ConditionsChanged``, for the oracle). A probe of size bytes takes size / bandwidth; a benchmark
    of work_s takes work_s (the nodes are idle). Switches to the current configuration are no-ops, as
    in the simulator, so ``switches`` lists changes only.
    """

    def __init__(self, policy: Policy, bandwidth_at: Callable[[float, tuple], float], changes_s=(), until_s=30.0):
        self.policy = policy
        self.bandwidth_at = bandwidth_at
        self.until_s = until_s
        self.now_s = 0.0
        self.queue: list = []
        self.order = itertools.count()
        self.current: dict[str, str] = {}
        self.switches: list[tuple[float, str, str]] = []
        for t in changes_s:
            self._at(t, lambda: ConditionsChanged(self.now_s, self.conditions()))

    def conditions(self) -> Conditions:
        return Conditions({h: self.bandwidth_at(self.now_s, h) for h in HOPS}, {})

    def run(self) -> list[tuple[float, str, str]]:
        self._carry_out(self.policy.start(Started(0.0, self.conditions())))
        while self.queue and self.queue[0][0] <= self.until_s:
            self.now_s, _, make = heapq.heappop(self.queue)
            self._carry_out(self.policy.observe(make()))
        return self.switches

    def _at(self, t: float, make) -> None:
        heapq.heappush(self.queue, (t, next(self.order), make))

    def _carry_out(self, actions) -> None:
        for a in actions:
            if isinstance(a, Switch):
                if self.current.get(a.device) != a.config_id:
                    self.current[a.device] = a.config_id
                    self.switches.append((round(self.now_s, 6), a.device, a.config_id))
            elif isinstance(a, Every):
                self._every(self.now_s + (a.period_s if a.first_s is None else a.first_s), a)
            elif isinstance(a, ProbeLink):
                took_s = a.size_bytes / mbps_to_bytes_per_s(self.bandwidth_at(self.now_s, a.hop))
                mbps = bytes_per_s_to_mbps(a.size_bytes / took_s)
                self._at(self.now_s + took_s, lambda hop=a.hop, mbps=mbps: LinkProbed(self.now_s, hop, mbps))
            elif isinstance(a, ProbeNode):
                self._at(self.now_s + a.work_s, lambda node=a.node: NodeProbed(self.now_s, node, 1.0))
            elif isinstance(a, Benchmark):
                measured, nodes = self.conditions(), tuple(a.work_s)
                self._at(self.now_s + max(a.work_s.values()),
                         lambda nodes=nodes, measured=measured: BenchmarkDone(self.now_s, nodes, measured))
            else:
                raise TypeError(a)

    def _every(self, t: float, a: Every) -> None:
        def tick():
            self._every(self.now_s + a.period_s, a)
            return Tick(self.now_s, a.timer)

        self._at(t, tick)


def dip_at(start_s: float, end_s: float, low_mbps: float = 0.5) -> Callable[[float, tuple], float]:
    """Both directions of device-edge drop to low_mbps over [start_s, end_s); everything else 8 Mbit/s."""
    def bandwidth(t, hop):
        return low_mbps if hop in (UP, UP[::-1]) and start_s <= t < end_s else 8.0

    return bandwidth


def test_the_fake_planner_ranks_like_the_simulated_world():
    assert FakePlanner().best("device", {h: 8.0 for h in HOPS}, {}, 3) == [EDGE, CLOUD, DEVICE]
    assert FakePlanner().best("device", {UP: 0.5}, {}, 1) == [DEVICE]
