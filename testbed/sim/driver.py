"""The SimPy driver of the policy API: simulation events become observations, actions become primitives.

``SimDriver`` is the object the engine calls (``start(sim)``, ``on_conditions(sim)``, ``name``). It
owns the link between a pure ``testbed.policies.Policy`` and one ``Simulation``:

- time is the simulation's clock; every observation carries ``sim.now``;
- ``Started`` and ``ConditionsChanged`` carry the true conditions (only the oracle reads the latter);
- ``Switch`` becomes ``set_split`` (requests in flight keep their split); when the switch changes a
  node's block range in a compiled runtime, the compile work (``plans.switch_work_s``) runs on those nodes
  first, as overhead sharing them with requests (counted in ``sim.compile_work_s``), and the old split
  serves until every one has finished (a later switch of the device supersedes a pending one, and is
  priced against the split in use: switching back to it is free);
  ``Every`` a ``call_every``
  that reports ``Tick``, ``Benchmark`` overhead work on each node (counted once per round in
  ``sim.benchmarks``) answered by ``BenchmarkDone`` with the conditions at the round's start,
  ``Recalibrate`` the same with its (smaller) work, counted in ``sim.recalibrations`` as well,
  ``ProbeLink``/``ProbeNode`` a transfer or work that shares the link or node with requests and is
  answered with what it saw (bytes / elapsed; work / elapsed).

``WorldPlanner`` answers a policy's questions about the world from ``testbed.sim.world.World``.
"""

from __future__ import annotations

from collections.abc import Mapping

from scission.units import bytes_per_s_to_mbps
from testbed.errors import ResourceMissing
from testbed.policies import api, make_policy
from testbed.policies.api import Action, Conditions, Hop, Observation, Policy, PolicySettings
from testbed.policies.costs import compile_price, recalibration_price
from testbed.policies.plans import switch_work_s
from testbed.sim.world import Split, World

__all__ = ["SimDriver", "WorldPlanner", "make_driver"]

_MIN_ELAPSED_S = 1e-12  # a probe that took no time still gives a finite figure


class WorldPlanner:
    """The ``testbed.policies.Planner`` of a simulated world."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.tiers: tuple[str, ...] = tuple(world.tiers)
        self.devices: tuple[str, ...] = tuple(world.devices)
        self._nominal = {hop: world.nominal_mbps(hop) for lk in world.topology.links for hop in ((lk.a, lk.b), (lk.b, lk.a))}

    def nodes(self, device: str) -> tuple[str, ...]:
        return tuple(n for n in self.world.paths[device].nodes if n is not None)

    def hops(self, device: str) -> tuple[Hop, ...]:
        present = self.nodes(device)
        out: list[Hop] = []
        for i, a in enumerate(present):
            for b in present[i + 1:]:
                for hop in self.world.route(a, b):
                    if hop not in out:
                        out.append(hop)
        return tuple(out)

    def nominal_mbps(self) -> Mapping[Hop, float]:
        return self._nominal

    def capacity(self, node: str) -> float:
        return self.world.nodes[node].capacity

    def benchmark_work_s(self, node: str) -> float:
        nm = self.world.nodes[node]
        wall = nm.profile.run.get("wall_s") if isinstance(nm.profile.run, dict) else None
        if wall is None:
            raise ResourceMissing(
                f"resource {nm.resource} (node {node}) has no benchmark wall time for {self.world.model} (run['wall_s'])",
                node=node, resource=nm.resource,
            )
        return float(wall)

    def recalibrate_work_s(self, node: str) -> float:
        return self.recalibrate_price(node).work_s

    def recalibrate_price(self, node: str):
        """The recalibration cost of the node's profile and where it comes from (``costs.Price``)."""
        nm = self.world.nodes[node]
        return recalibration_price(nm.profile.run, [b.latency.mean_s for b in nm.profile.blocks],
                                   nm.profile.call_overhead_s)

    def ranges(self, device: str, config_id: str) -> Mapping[str, tuple[int, int]]:
        plan = self.world.plan(device, self.world.parse_split(config_id))
        return {st.node: (st.first_block, st.last_block) for st in plan.stages if st.kind == "compute"}

    def compile_work_s(self, node: str, first_block: int, last_block: int) -> float:
        nm = self.world.nodes[node]
        return compile_price(nm.profile.run, len(nm.profile.blocks), first_block, last_block)

    def best(self, device: str, bandwidth_mbps: Mapping[Hop, float], load: Mapping[str, float],
             k: int = 1) -> list[str]:
        return [config.id for config in self.world.best(device, bandwidth_mbps, load, k)]

    def validate(self, config_id: str) -> str:
        split = self.world.parse_split(config_id)
        self.world.check_split(split)
        return split.id


class SimDriver:
    """Drives one policy in one simulation run (a new driver per run: the policy keeps state)."""

    def __init__(self, policy: Policy, world: World) -> None:
        self.policy = policy
        self.world = world
        self._sim = None
        self._splits: dict[str, Split] = {}
        self._asked: dict[str, str] = {}  # device -> the configuration last asked for (in use or compiling)
        self._generation: dict[str, int] = {}  # device -> switches asked; a compile that finishes late is void

    @property
    def name(self) -> str:
        return self.policy.name

    # --- the engine's calls -----------------------------------------------------------------------

    def start(self, sim) -> None:
        self._sim = sim
        self._carry_out(self.policy.start(api.Started(sim.now, self._conditions())))

    def on_conditions(self, sim) -> None:
        self._carry_out(self.policy.observe(api.ConditionsChanged(sim.now, self._conditions())))

    # --- observations in, actions out -------------------------------------------------------------

    def _conditions(self) -> Conditions:
        return Conditions(self._sim.bandwidth_mbps, self._sim.load)

    def _observe(self, obs: Observation) -> None:
        self._carry_out(self.policy.observe(obs))

    def _carry_out(self, actions: list[Action]) -> None:
        for action in actions:
            self._do(action)

    def _do(self, action: Action) -> None:
        sim = self._sim
        if isinstance(action, api.Switch):
            self._switch(action)
        elif isinstance(action, api.Every):
            timer = action.timer
            sim.call_every(action.period_s, lambda: self._observe(api.Tick(sim.now, timer)), action.first_s)
        elif isinstance(action, api.Benchmark):
            self._benchmark(action)
        elif isinstance(action, api.ProbeLink):
            hop, size = action.hop, action.size_bytes
            sim.submit_transfer(hop, size, lambda elapsed_s: self._observe(
                api.LinkProbed(sim.now, hop, bytes_per_s_to_mbps(size / max(elapsed_s, _MIN_ELAPSED_S)))))
        elif isinstance(action, api.ProbeNode):
            node, work = action.node, action.work_s
            sim.submit_work(node, work, lambda elapsed_s: self._observe(
                api.NodeProbed(sim.now, node, work / max(elapsed_s, _MIN_ELAPSED_S))))
        else:
            raise TypeError(f"policy {self.name} returned {action!r}, which is not an action this driver knows")

    def _switch(self, action: api.Switch) -> None:
        sim, device = self._sim, action.device
        split = self._split(action.config_id)
        if self._asked.get(device) == split.id:
            return  # already in use or compiling
        self._asked[device] = split.id
        generation = self._generation[device] = self._generation.get(device, 0) + 1  # voids a pending switch
        applied = sim.split.get(device)  # what the nodes hold loaded and serve: the diff is against it
        work = {}
        if applied is not None and applied != split and not self.policy.free_switches:
            work = switch_work_s(self.policy.planner, device, applied.id, split.id)
        if not work:
            sim.set_split(device, split)
            return
        left = [len(work)]

        def compiled(_elapsed_s: float) -> None:
            left[0] -= 1
            if left[0] == 0 and self._generation[device] == generation:
                sim.set_split(device, split)

        for node, work_s in work.items():
            sim.compile_work_s += work_s
            sim.submit_work(node, work_s, compiled, overhead=True)

    def _benchmark(self, action: api.Benchmark) -> None:
        sim = self._sim
        sim.benchmarks += 1
        if isinstance(action, api.Recalibrate):
            sim.recalibrations += 1
        measured = self._conditions()  # what the round will report: the world it started in
        nodes = tuple(action.work_s)
        left = [len(nodes)]

        def finished(_elapsed_s: float) -> None:
            left[0] -= 1
            if left[0] == 0:
                self._observe(api.BenchmarkDone(sim.now, nodes, measured))

        for node, work_s in action.work_s.items():
            sim.submit_work(node, work_s, finished, overhead=True)

    def _split(self, config_id: str) -> Split:
        split = self._splits.get(config_id)
        if split is None:
            split = self._splits[config_id] = self.world.parse_split(config_id)
        return split


def make_driver(settings: PolicySettings, world: World) -> SimDriver:
    """The policy of ``settings`` (a ``PolicySpec``) on this world, ready for ``Simulation``."""
    return SimDriver(make_policy(settings, WorldPlanner(world)), world)
