"""`testbed run`: bring a topology up, benchmark every node in place, probe, predict, measure, bring it down.

Steps, in order: up -> start agents -> benchmark (scission benchmark inside each container, under its
CPU limit) -> probe links -> predict with scission's search on the measured RTT and bandwidth -> deploy
each configuration (top k + native) and time N requests end to end -> down (always, even after a
failure or Ctrl-C). The folder is checkpointed as the run goes, so a failed run keeps what it measured.

A configuration's data path runs from the device through each computing node in tier order; between two
computing nodes without a link it visits every relay node on the fewest-hops route (`Routes`), each
loaded with an empty block range, so it forwards the tensor unchanged (`plan_stages`). Replies retrace
the path: every agent answers on the connection it was called on.

The emulation and the agents are injected (`Emulated`, `testbed.run.agents.Agents`): the real ones by
default, fakes in the fast tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from emulator.emulation import Emulation
from emulator.topology import TopologySpec, host_cpus, load_topology
from scission.network import Routes
from scission.problem import Configuration
from scission.runtimes import EAGER, FALLBACK
from testbed.errors import AgentError, ConfigurationError, RunFailed, RunFolderError, translated
from testbed.run.agents import AgentClient, Agents, RequestRecord
from testbed.run.folder import RunFolder
from testbed.run.predict import Chosen, choose_device, network_from_probes, predict
from testbed.run.results import RunResults
from testbed.run.spec import ExperimentSpec, FaultSpec

__all__ = ["Emulated", "Segment", "Stage", "plan_segments", "plan_stages", "run_experiment", "split_requests"]

log = logging.getLogger(__name__)
StepFn = Callable[[str, str], None]
# Cores left to the delay lines, dockerd and the run itself when the nodes benchmark at once.
HOST_RESERVE_CPUS = 0.5


class Emulated(Protocol):
    """What a run needs of a running emulation (``emulator.emulation.Emulation`` is one)."""

    def exec(self, node: str, argv: Sequence[str], *, detach: bool = False) -> tuple[int, str]: ...

    def address(self, node: str, peer: str) -> str: ...

    def probe(self) -> list: ...

    def stop_node(self, node: str) -> None: ...

    def cut_link(self, a: str, b: str) -> None: ...

    def down(self) -> None: ...


UpFn = Callable[[TopologySpec], Emulated]
AgentsFn = Callable[[Emulated, TopologySpec], Agents]


@dataclass(frozen=True)
class Segment:
    """Requests ``lo``..``hi - 1`` of a configuration, sent after applying the faults at ``faults`` (indices)."""

    lo: int
    hi: int
    faults: tuple[int, ...] = ()


@dataclass(frozen=True)
class Stage:
    """One node on a configuration's data path and its blocks; ``last_block = first_block - 1``: none (a relay,
    or the device when it runs nothing)."""

    node: str
    first_block: int
    last_block: int

    @property
    def is_relay(self) -> bool:
        return self.last_block < self.first_block


def plan_stages(config: Configuration, routes: Routes) -> list[Stage]:
    """The data path of ``config``, upstream first: the device, each computing node in tier order, and
    between two consecutive ones the relays on the route that joins them (empty range at the next one's
    first block, so the tensor's shape is the one that node expects).

    Raises ConfigurationError when no route joins two of its nodes, or the path visits a node twice (an
    agent holds one stage: in a star around a gateway, device -> edge -> cloud crosses the gateway twice).
    """
    computing = [p for i, p in enumerate(config.placements) if i == 0 or p.runs]
    stages: list[Stage] = []
    for p, nxt in zip(computing, [*computing[1:], None], strict=True):
        stages.append(Stage(p.resource, p.first_block, p.last_block) if p.runs else Stage(p.resource, 0, -1))
        if nxt is None:
            break
        route = routes.path(p.resource, nxt.resource)
        if route is None:
            raise ConfigurationError(f"configuration {config.id}: no route from {p.resource} to {nxt.resource}")
        stages += [Stage(relay, nxt.first_block, nxt.first_block - 1) for relay in route[1:-1]]
    nodes = [s.node for s in stages]
    twice = sorted({n for n in nodes if nodes.count(n) > 1})
    if twice:
        raise ConfigurationError(f"configuration {config.id}: its data path {' -> '.join(nodes)} visits "
                                 f"{', '.join(twice)} twice, and an agent holds one stage")
    return stages


def split_requests(total: int, rounds: int) -> list[int]:
    """Requests per round: ``total`` spread over at most ``rounds`` rounds, the first ones one larger."""
    rounds = max(1, min(rounds, total))
    return [total // rounds + (1 if i < total % rounds else 0) for i in range(rounds)]


def plan_segments(first: int, count: int, faults: Sequence[FaultSpec], position: int, label: str,
                  applied: Collection[int], ids: tuple[str, ...] = ()) -> list[Segment]:
    """One round of a configuration's requests (first..first + count - 1), cut where a scripted fault of
    this configuration (by 1-based position, label or configuration id) not yet applied is due."""
    mine = [i for i, f in enumerate(faults) if f.applies_to(position, label, ids) and i not in applied]
    bounds = sorted({first, first + count} | {faults[i].after_requests for i in mine
                                              if first <= faults[i].after_requests < first + count})
    segments, taken = [], set()
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        due = tuple(i for i in mine if i not in taken and faults[i].after_requests <= lo)
        taken.update(due)
        segments.append(Segment(lo, hi, due))
    return segments


def _apply_fault(emu: Emulated, fault: FaultSpec) -> str:
    with translated(RunFailed, f"fault {fault.action}"):
        if fault.action == "stop-node":
            emu.stop_node(fault.node)
            return f"stopped node {fault.node}"
        emu.cut_link(*fault.link)
    return f"cut link {fault.link[0]}-{fault.link[1]}"


class _Run:
    """One run's state between the steps: the spec, the emulation, the agents, the results and the folder."""

    def __init__(self, spec: ExperimentSpec, topology: TopologySpec, device: str, results: RunResults,
                 folder: RunFolder, emu: Emulated, agents: Agents, step: StepFn):
        self.spec, self.topology, self.device = spec, topology, device
        self.results, self.folder, self.emu, self.agents, self.step = results, folder, emu, agents, step
        self.routes = Routes((lk.a, lk.b) for lk in topology.links)
        self.runtimes: dict[tuple[str, str], str] = {}  # (model, node) -> the runtime its profile was timed in

    def runtime(self, model: str, node: str) -> str:
        """The runtime ``node`` serves ``model`` in: the one its profile recorded (it predicts that one)."""
        return self.runtimes.get((model, node), FALLBACK)

    def speed(self, node: str, model: str) -> float | None:
        """Median whole-pass time of the model, compiled as the node serves it, on ``node`` now (None when the
        probe fails)."""
        try:
            return self.agents.speed(node, model, self.spec.speed_probe_passes, self.spec.seed,
                                     runtime=self.runtime(model, node))
        except AgentError as exc:
            log.info("speed probe: %s", exc)
            return None

    def parallel_benchmark(self) -> bool:
        """Whether the nodes benchmark at once: asked for, and their CPU limits fit the host with room to spare."""
        if not self.spec.parallel_benchmark:
            return False
        total_cpus = sum(node.cpus for node in self.topology.nodes)
        if total_cpus + HOST_RESERVE_CPUS > host_cpus():
            self.results.warn(f"parallel_benchmark: the nodes' {total_cpus:g} cpus and {HOST_RESERVE_CPUS:g} for the "
                              f"delay lines exceed the host's {host_cpus()}; benchmarking one node at a time")
            return False
        return len(self.topology.nodes) > 1

    def benchmark(self, model: str) -> None:
        nodes = self.topology.nodes
        if self.parallel_benchmark():
            total = sum(node.cpus for node in nodes)
            self.step("benchmark", f"{model} on {len(nodes)} nodes at once ({total:g} of the host's "
                                   f"{host_cpus():g} cpus; each held to its limit)")
            with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
                futures = [pool.submit(self._benchmark_node, node, model) for node in nodes]
            replies = [f.result() for f in futures]
        else:
            replies = []
            for node in nodes:
                self.step("benchmark", f"{model} on {node.name} ({node.cpus:g} cpus)")
                replies.append(self._benchmark_node(node, model))
        for node, reply in zip(nodes, replies, strict=True):
            self.folder.write_profile_files(model, reply.files)
            try:
                profiles = self.folder.read_profiles(model)
                self.results.set_profiles(model, profiles, node.name, reply.wall_s)
            except RunFolderError as exc:
                self.results.warn(f"profiles.parquet leaves out {model}: {exc}")
                profiles = []
            mine = [p.models[model] for p in profiles if p.resource.name == node.name and model in p.models]
            runtime = mine[0].runtime if mine else FALLBACK
            self.runtimes[(model, node.name)] = runtime
            if self.spec.speed_probe_passes:
                # The reference is the benchmark's own pass in the runtime the node serves (what the profile
                # says); a probe right after it shows how the agent's passes compare at that moment.
                reference = reply.chained_pass_s if runtime == EAGER or reply.whole_model_s is None else \
                    reply.whole_model_s
                self.results.set_speed_reference(model, node.name, reference, self.speed(node.name, model))
            self.folder.checkpoint(self.results)

    def _benchmark_node(self, node, model: str):
        try:
            return self.agents.benchmark(node.name, model, self.spec.repeats, node.tier, runtime=self.spec.runtime)
        except AgentError as exc:
            raise RunFailed(f"benchmark of {model} on {node.name}: {exc}") from None

    def deploy(self, model: str, config: Configuration, label: str = "", round_index: int = 0) -> None:
        """Load each stage of the data path, relays included, downstream first (the device holds the input),
        each compiled in the runtime its node's profile was timed in; records what each load compiled."""
        stages = plan_stages(config, self.routes)
        for index in range(len(stages) - 1, -1, -1):
            s = stages[index]
            nxt = stages[index + 1].node if index + 1 < len(stages) else None
            runtime = self.runtime(model, s.node)
            reply = self.agents.load(s.node, model, s.first_block, s.last_block, self.spec.seed, nxt,
                                     runtime=runtime)
            if not s.is_relay:
                self.results.add_load(model, config.id, label, round_index, s.node, s.first_block, s.last_block,
                                      runtime, reply)

    def probe_nodes(self, model: str, chosen: Chosen, round_index: int) -> None:
        """Probe the speed of every node that computes in the configuration, next to this round's requests."""
        probes = [(p.resource, self.speed(p.resource, model)) for p in chosen.config.placements
                  if p.runs and p.resource is not None]
        self.results.add_speeds(model, chosen.id, chosen.label, round_index, probes)

    def measure(self, model: str, chosen: list[Chosen]) -> bool:
        """Time every configuration in interleaved rounds (deploy, warm up, a few requests each), so slow drift
        on the host falls on all configurations alike. Returns True when the run must stop (on_failure: stop)."""
        spec, results = self.spec, self.results
        stop_on_failure = spec.on_failure == "stop"
        done = {c.id: 0 for c in chosen}
        applied: set[int] = set()
        failed: set[str] = set()
        rounds = split_requests(spec.requests, spec.rounds)
        for round_index, per_round in enumerate(rounds, start=1):
            for position, c in enumerate(chosen, start=1):
                if c.id in failed:
                    continue
                self.step("measure", f"{model} round {round_index}/{len(rounds)} {c.label} {c.id}")
                try:
                    stop = self._measure_round(model, c, position, round_index, per_round, done, applied)
                except (AgentError, ConfigurationError) as exc:  # deploy, warm-up or drive: it is done for
                    results.add_failure(model, c.id, f"{c.label} {c.id}: {exc}")
                    failed.add(c.id)
                    stop = stop_on_failure
                self.folder.checkpoint(results)
                if stop:
                    return True
        return False

    def _measure_round(self, model: str, c: Chosen, position: int, round_index: int, per_round: int,
                       done: dict[str, int], applied: set[int]) -> bool:
        spec, results = self.spec, self.results
        self.deploy(model, c.config, c.label, round_index)
        if spec.warmup_requests and round_index == 1:  # later rounds find kernels and connections warm
            self.agents.drive(self.device, spec.warmup_requests, spec.request_timeout_s)
        if spec.speed_probe_passes:
            self.probe_nodes(model, c, round_index)
        for segment in plan_segments(done[c.id], per_round, spec.faults, position, c.label, applied,
                                     (c.id, c.config.block_id)):
            for index in segment.faults:
                applied.add(index)
                results.add_event(model, c.id, _apply_fault(self.emu, spec.faults[index]))
            records = self.agents.drive(self.device, segment.hi - segment.lo, spec.request_timeout_s,
                                        stop_on_failure=spec.on_failure == "stop")
            records = [_renumbered(r, segment.lo) for r in records]
            done[c.id] = segment.lo + len(records)
            results.add_requests(model, c.id, c.label, records)
            if spec.on_failure == "stop" and any(not r.ok for r in records):
                return True
        return False


def _renumbered(record: RequestRecord, offset: int) -> RequestRecord:
    """A drive call numbers its requests from 0; the tables number them from 1 within the configuration."""
    return replace(record, request=offset + record.request + 1)


def _default_up(image: str | None) -> UpFn:
    def up(topology: TopologySpec) -> Emulated:
        return Emulation.up(topology, image=image) if image else Emulation.up(topology)

    return up


def run_experiment(spec: ExperimentSpec, out_dir: str | Path, on_step: StepFn | None = None,
                   image: str | None = None, *, up: UpFn | None = None, agents: AgentsFn | None = None
                   ) -> RunResults:
    """Run every step; the topology is always brought down. Returns what was measured.

    ``up`` brings the topology up (default `Emulation.up`, with ``image`` when given); ``agents`` makes the
    agent client for the emulation (default `AgentClient`). Emulator errors become RunFailed.
    """
    step = on_step or (lambda s, detail: None)
    with translated(RunFailed, f"topology {spec.topology}"):
        topology = load_topology(spec.topology)
    device = choose_device([n.name for n in topology.nodes if n.tier == topology.tiers[0]], topology.name,
                           spec.device)
    results = RunResults(spec, topology, device)
    folder = RunFolder(out_dir)
    folder.checkpoint(results)
    emu = None
    try:
        step("up", f"topology {topology.name}")
        with translated(RunFailed, f"bringing {topology.name} up"):
            emu = (up or _default_up(image))(topology)
        run = _Run(spec, topology, device, results, folder, emu, (agents or AgentClient)(emu, topology), step)
        step("agents", "starting one agent per node")
        run.agents.start()
        for model in spec.models:
            run.benchmark(model)
        step("probe", "echo RTT and bulk throughput on every link direction")
        with translated(RunFailed, f"probing the links of {topology.name}"):
            probes = emu.probe()
        results.set_probes(probes)
        network = network_from_probes(probes)
        for model in spec.models:
            step("predict", model)
            prediction = predict(folder.read_profiles(model), network, model, device, topology.tiers, spec.top_k,
                                 spec.native)
            for label in prediction.unreachable:
                results.note(f"{model}: {label} left out: no route from the device to that tier")
            if prediction.input_note:
                results.warn(f"{model}: {prediction.input_note}")
            results.set_configs(model, prediction.chosen)
            folder.checkpoint(results)
            if run.measure(model, prediction.chosen):
                break
    except KeyboardInterrupt:
        results.fail("interrupted by the user")
        raise
    except Exception as exc:  # recorded in the folder, then raised as it was
        results.fail(f"run failed: {exc}")
        raise
    finally:
        if emu is not None:
            step("down", f"topology {topology.name}")
            try:
                emu.down()
            except Exception as exc:  # never mask the run's own error; say it instead
                log.error("bringing %s down failed: %s", topology.name, exc)
        folder.finish(results)
    return results
