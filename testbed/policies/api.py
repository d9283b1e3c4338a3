"""The policy API: observations a driver reports, actions a policy returns, and what it may ask the world.

A policy is a decision rule with state and nothing else: it owns no clock, no event loop, no
simulation and no agent. A *driver* owns all of those. It reports what happened as frozen
observations (each stamped with the driver's time, ``now_s``) and carries out the actions the
policy returns. The SimPy world (``testbed.sim.driver``) is one driver; a controller driving real
agents is another. Because a policy sees nothing but these types and a ``Planner``, the same policy
object gives the same decisions under either driver for the same sequence of observations.

Configurations are plain ids ('device:0-87,edge:88-92', Keras layer ranges, the form
``scission.problem.config_id`` produces), so that a live driver needs no simulator types to carry out a ``Switch``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

__all__ = [
    "Action",
    "Benchmark",
    "BenchmarkDone",
    "Conditions",
    "ConditionsChanged",
    "Every",
    "Hop",
    "LatencyObserved",
    "LinkProbed",
    "NodeProbed",
    "Observation",
    "Planner",
    "Policy",
    "PolicySettings",
    "ProbeLink",
    "ProbeNode",
    "Recalibrate",
    "Started",
    "Switch",
    "Tick",
]

Hop = tuple[str, str]
"""One direction of a link, (from_node, to_node): bandwidth differs per direction."""


def _frozen_mapping(value: Mapping) -> Mapping:
    # A snapshot: the caller's dict may keep changing (the simulator updates its own in place).
    return MappingProxyType(dict(value))


@dataclass(frozen=True)
class Conditions:
    """Bandwidth per directed link (Mbit/s) and background load per node (0..1, share of its capacity).

    A snapshot, whoever took it: the true conditions (simulator) or what probes and benchmarks
    measured (live). Nodes missing from ``load`` are unloaded; links missing from ``bandwidth_mbps``
    have their nominal bandwidth.
    """

    bandwidth_mbps: Mapping[Hop, float]
    load: Mapping[str, float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "bandwidth_mbps", _frozen_mapping(self.bandwidth_mbps))
        object.__setattr__(self, "load", _frozen_mapping(self.load))


# --- observations: what a driver reports -------------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    """Something the driver saw, at its time ``now_s`` (seconds since the run started)."""

    now_s: float


@dataclass(frozen=True)
class Started(Observation):
    """The run begins; ``conditions`` are what is known before the first request (live: the initial probe)."""

    conditions: Conditions


@dataclass(frozen=True)
class Tick(Observation):
    """A timer the policy asked for with ``Every`` fired."""

    timer: str


@dataclass(frozen=True)
class LinkProbed(Observation):
    """A ``ProbeLink`` finished: the bandwidth it got (size / elapsed, sharing the link with requests)."""

    hop: Hop
    bandwidth_mbps: float
    rtt_ms: float | None = None  # None when the probe cannot tell (the simulator's transfer probe)


@dataclass(frozen=True)
class NodeProbed(Observation):
    """A ``ProbeNode`` finished: ``speed`` is the probe's work_s / elapsed seconds.

    1.0 means the probe ran as fast as on an idle profiled core; less means it shared the node (with
    requests or background load). Turning that into a load estimate is the policy's business.
    """

    node: str
    speed: float


@dataclass(frozen=True)
class BenchmarkDone(Observation):
    """Every node of a ``Benchmark`` (or ``Recalibrate``) round has finished.

    ``conditions`` are what the round measured, as they were when it started (in the simulator, the
    true conditions at that moment): a benchmark describes the world it ran in, not the world it ends in.
    """

    nodes: tuple[str, ...]
    conditions: Conditions


@dataclass(frozen=True)
class ConditionsChanged(Observation):
    """The true conditions changed. Only an oracle may use this: no real deployment can see it."""

    conditions: Conditions


@dataclass(frozen=True)
class LatencyObserved(Observation):
    """A request of ``device`` finished in ``latency_s`` under ``config_id``.

    Drivers may report it; no policy here relies on it yet, and the SimPy driver does not emit it.
    """

    device: str
    config_id: str
    latency_s: float


# --- actions: what a policy asks for ---------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """Something the policy wants the driver to do now."""


@dataclass(frozen=True)
class Switch(Action):
    """Use ``config_id`` for the device's requests from now on (requests in flight keep theirs).

    A switch that changes a node's block range costs compiling the new range there
    (``plans.switch_work_s``): the driver charges that work on those nodes, as it does a benchmark's,
    and the old configuration serves until it is done.
    """

    device: str
    config_id: str


@dataclass(frozen=True)
class Benchmark(Action):
    """One re-benchmark round: each node runs ``work_s[node]`` full-speed seconds of benchmark, all from now.

    It takes node CPU from serving. The driver answers with one ``BenchmarkDone`` when all have finished.
    """

    work_s: Mapping[str, float]

    def __post_init__(self) -> None:
        if not self.work_s:
            raise ValueError("a benchmark round needs at least one node")
        object.__setattr__(self, "work_s", _frozen_mapping(self.work_s))


@dataclass(frozen=True)
class Recalibrate(Benchmark):
    """A cheaper refresh than ``Benchmark``: each node runs a few whole passes and rescales its profile
    (the agent's ``recalibrate`` op), ``work_s[node]`` full-speed seconds. Answered by one ``BenchmarkDone``;
    a driver that cannot tell the two apart may carry it out as a benchmark of the same work."""


@dataclass(frozen=True)
class ProbeLink(Action):
    """Send ``size_bytes`` over one directed link; the driver answers with ``LinkProbed``."""

    hop: Hop
    size_bytes: float

    def __post_init__(self) -> None:
        if not self.size_bytes > 0:
            raise ValueError(f"probe size {self.size_bytes!r} bytes on {self.hop} must be greater than 0")


@dataclass(frozen=True)
class ProbeNode(Action):
    """Run ``work_s`` full-speed seconds of work on a node (sharing it); the driver answers with ``NodeProbed``."""

    node: str
    work_s: float

    def __post_init__(self) -> None:
        if not self.work_s > 0:
            raise ValueError(f"probe work {self.work_s!r} s on {self.node} must be greater than 0")


@dataclass(frozen=True)
class Every(Action):
    """Report ``Tick(timer)`` at ``first_s`` from now (default ``period_s``), then every ``period_s``."""

    period_s: float
    timer: str
    first_s: float | None = None

    def __post_init__(self) -> None:
        if not self.period_s > 0:
            raise ValueError(f"timer {self.timer!r}: period {self.period_s!r} s must be greater than 0")


# --- what a policy may ask about the world ----------------------------------------------------------


class Planner(Protocol):
    """The world as a policy may query it: structure, costs and scission's search; no state, no clock.

    Each driver brings one (the simulator's wraps ``testbed.sim.world.World``). Names are topology
    node names; hops are directed links.
    """

    @property
    def tiers(self) -> tuple[str, ...]:
        """Ordered tier names, device first: the tiers a configuration id may name."""

    @property
    def devices(self) -> tuple[str, ...]:
        """The devices whose configuration a policy chooses, in a fixed order."""

    def nodes(self, device: str) -> tuple[str, ...]:
        """The nodes that may run the device's blocks, in tier order (the device first)."""

    def hops(self, device: str) -> tuple[Hop, ...]:
        """The directed links the device's requests may cross between those nodes, upstream, each once."""

    def nominal_mbps(self) -> Mapping[Hop, float]:
        """Every directed link's bandwidth before any change (the topology's, or a probe's at set-up)."""

    def capacity(self, node: str) -> float:
        """Requests the node serves at full speed at once (its cores)."""

    def benchmark_work_s(self, node: str) -> float:
        """Full-speed seconds one re-benchmark of the model costs on the node (raises ResourceMissing if unknown)."""

    def recalibrate_work_s(self, node: str) -> float:
        """Full-speed seconds one recalibration costs on the node: measured, else ``costs.recalibration_price``'s
        estimate (raises ResourceMissing if the node is unknown)."""

    def ranges(self, device: str, config_id: str) -> Mapping[str, tuple[int, int]]:
        """Per node of the device's path that runs blocks under the configuration, its (first, last) block."""

    def compile_work_s(self, node: str, first_block: int, last_block: int) -> float:
        """Full-speed seconds compiling blocks first..last as one callable costs on the node (0: eager)."""

    def best(self, device: str, bandwidth_mbps: Mapping[Hop, float], load: Mapping[str, float],
             k: int = 1) -> list[str]:
        """scission's top-k configuration ids for the device under these conditions, best first."""

    def validate(self, config_id: str) -> str:
        """The canonical id of a configuration or '<tier>-only' that every device can run.

        Raises ConfigurationError naming what is wrong.
        """


class PolicySettings(Protocol):
    """A policy's entry of the input file (e.g. ``testbed.sim.spec.PolicySpec``), read by attribute.

    Each policy reads the fields of its kind (``period_s``, ``threshold_pct``, ``refresh``, ...); these two
    are common.
    """

    kind: str
    name: str


class Policy:
    """A decision rule: observations in, actions out. Subclasses hold their own state and nothing else.

    ``start`` is called once, first; ``observe`` for every later observation, in time order. Both return
    the actions to carry out now, in order (an empty list: nothing to do). A policy must ignore
    observations it does not use, so that drivers may report more than it asked for.
    """

    free_switches = False
    """True only for a yardstick (the oracle): drivers charge it no compile time when it switches."""

    def __init__(self, settings: PolicySettings, planner: Planner) -> None:
        self.settings = settings
        self.planner = planner

    @property
    def name(self) -> str:
        return self.settings.name

    def start(self, obs: Started) -> list[Action]:
        raise NotImplementedError

    def observe(self, obs: Observation) -> list[Action]:
        return []

