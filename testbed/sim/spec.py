"""Simulation files: YAML checked by pydantic, then frozen dataclasses the model runs on.

Every error is a SimulationFileError whose message starts with the file and the field path, e.g.
"sim.yaml: policies[1].period_s: must be greater than 0". Paths in the file (topology, profiles,
traces) are relative to the file's own folder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from scission.files import read_yaml, validation_message
from testbed.errors import SimulationFileError

__all__ = [
    "ArrivalSpec",
    "ConditionSpec",
    "NodeOverride",
    "PolicySpec",
    "SERVICE_KINDS",
    "SimulationSpec",
    "load_simulation",
    "simulation_from_dict",
]

SERVICE_KINDS = ("auto", "deterministic", "exponential", "empirical", "lognormal")
POLICY_KINDS = ("static", "device-only", "edge-only", "cloud-only", "oracle", "periodic", "adaptive")


@dataclass(frozen=True)
class ArrivalSpec:
    """How requests enter: per device, a Poisson or fixed rate, a trace of times, or a closed loop."""

    kind: str  # poisson | fixed | trace | closed
    rate_per_s: float | None = None
    trace_path: Path | None = None
    concurrency: int = 1
    think_s: float = 0.0
    devices: tuple[str, ...] = ()  # empty: every device-tier node


@dataclass(frozen=True)
class PolicySpec:
    """One policy to run; fields that its kind does not use stay None."""

    kind: str
    name: str
    configuration: str | None = None
    rank: int | None = None
    period_s: float | None = None
    overhead_s: float | None = None
    probe_period_s: float = 5.0
    probe_bytes: float = 20_000.0
    probe_work_s: float = 0.005
    probe_nodes: bool = False
    threshold_pct: float = 25.0
    confirm: int = 2
    cooldown_s: float = 10.0
    alpha: float = 0.5


@dataclass(frozen=True)
class ConditionSpec:
    """A bandwidth (link, both directions) or background-load (node) trace."""

    kind: str  # step | random-walk | csv
    target: str  # "link" or "node"
    link: tuple[str, str] | None = None
    node: str | None = None
    points: tuple[tuple[float, float], ...] = ()  # step: (time_s, value)
    csv_path: Path | None = None
    start: float | None = None
    step_s: float = 1.0
    sigma_pct: float = 10.0
    reversion: float = 0.0  # random walk: fraction of the way back to start per step (0: a pure walk)
    minimum: float | None = None
    maximum: float | None = None
    where: str = ""  # field path, for error messages

    @property
    def quantity(self) -> str:
        return "bandwidth_mbps" if self.target == "link" else "load"


@dataclass(frozen=True)
class NodeOverride:
    """capacity: requests served at full speed at once (default max(1, cpus)); speed divides block times."""

    capacity: float | None = None
    speed: float = 1.0


@dataclass(frozen=True)
class SimulationSpec:
    name: str
    topology_path: Path
    profiles_path: Path
    resources: dict[str, str]
    model: str
    arrivals: ArrivalSpec
    policies: tuple[PolicySpec, ...]
    seeds: tuple[int, ...] = (1,)
    duration_s: float | None = None
    requests: int | None = None
    warmup_s: float = 0.0
    input_bytes: float | None = None
    service: str = "auto"
    service_cv: float = 0.1
    nodes: dict[str, NodeOverride] = field(default_factory=dict)
    conditions: tuple[ConditionSpec, ...] = ()
    records: bool = False
    reply: bool = False
    max_in_flight: int = 10_000
    drain_limit_s: float | None = None
    source: Path | None = None


# --- file schema ----------------------------------------------------------------------------------


def _positive(value: float | None, strict: bool = True) -> float | None:
    if value is None:
        return value
    if not math.isfinite(value) or (value <= 0 if strict else value < 0):
        raise ValueError(f"{value!r} must be {'greater than 0' if strict else '>= 0'}")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Arrivals(_Strict):
    kind: Literal["poisson", "fixed", "trace", "closed"]
    rate_per_s: float | None = None
    path: str | None = None
    concurrency: int = 1
    think_s: float = 0.0
    devices: list[str] = []

    @field_validator("rate_per_s")
    @classmethod
    def _rate(cls, v: float | None) -> float | None:
        return _positive(v)

    @field_validator("think_s")
    @classmethod
    def _think(cls, v: float) -> float:
        return _positive(v, strict=False)

    @field_validator("concurrency")
    @classmethod
    def _conc(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"{v!r} must be at least 1")
        return v

    @model_validator(mode="after")
    def _needs(self) -> _Arrivals:
        if self.kind in ("poisson", "fixed") and self.rate_per_s is None:
            raise ValueError(f"arrivals of kind {self.kind} need rate_per_s")
        if self.kind == "trace" and not self.path:
            raise ValueError("arrivals of kind trace need path (a CSV with a time_s column)")
        return self


class _Stop(_Strict):
    duration_s: float | None = None
    requests: int | None = None

    @field_validator("duration_s")
    @classmethod
    def _dur(cls, v: float | None) -> float | None:
        return _positive(v)

    @field_validator("requests")
    @classmethod
    def _req(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"{v!r} must be at least 1")
        return v

    @model_validator(mode="after")
    def _one(self) -> _Stop:
        if (self.duration_s is None) == (self.requests is None):
            raise ValueError("give exactly one of duration_s or requests")
        return self


class _Policy(_Strict):
    kind: Literal["static", "device-only", "edge-only", "cloud-only", "oracle", "periodic", "adaptive"]
    name: str | None = None
    configuration: str | None = None
    rank: int | None = None
    period_s: float | None = None
    overhead_s: float | None = None
    probe_period_s: float = 5.0
    probe_bytes: float = 20_000.0
    probe_work_s: float = 0.005
    probe_nodes: bool = False
    threshold_pct: float = 25.0
    confirm: int = 2
    cooldown_s: float = 10.0
    alpha: float = 0.5

    @field_validator("period_s", "probe_period_s", "probe_bytes", "probe_work_s", "threshold_pct")
    @classmethod
    def _pos(cls, v: float | None) -> float | None:
        return _positive(v)

    @field_validator("overhead_s", "cooldown_s")
    @classmethod
    def _nonneg(cls, v: float | None) -> float | None:
        return _positive(v, strict=False)

    @field_validator("alpha")
    @classmethod
    def _alpha(cls, v: float) -> float:
        if not 0 < v <= 1:
            raise ValueError(f"{v!r} must be in (0, 1]")
        return v

    @model_validator(mode="after")
    def _needs(self) -> _Policy:
        if self.kind == "static" and (self.configuration is None) == (self.rank is None):
            raise ValueError("a static policy needs exactly one of configuration (e.g. 'device:0-9,edge:10-65') or rank")
        if self.rank is not None and self.rank < 1:
            raise ValueError(f"rank {self.rank} must be at least 1")
        if self.kind == "periodic" and self.period_s is None:
            raise ValueError("a periodic policy needs period_s")
        return self


class _Condition(_Strict):
    kind: Literal["step", "random-walk", "csv"]
    link: str | None = Field(default=None, description="'a-b' or [a, b]")
    node: str | None = None
    bandwidth_mbps: list[tuple[float, float]] | None = None
    load: list[tuple[float, float]] | None = None
    path: str | None = None
    start: float | None = None
    step_s: float = 1.0
    sigma_pct: float = 10.0
    reversion: float = 0.0
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _target(self) -> _Condition:
        if (self.link is None) == (self.node is None):
            raise ValueError("give exactly one of link (bandwidth trace) or node (background-load trace)")
        if self.kind == "step":
            points = self.bandwidth_mbps if self.link is not None else self.load
            wanted = "bandwidth_mbps" if self.link is not None else "load"
            if not points:
                raise ValueError(f"a step trace on a {'link' if self.link else 'node'} needs {wanted}: [[time_s, value], ...]")
        if self.kind == "csv" and not self.path:
            raise ValueError("a csv trace needs path")
        if self.kind == "random-walk" and self.start is None:
            raise ValueError("a random-walk trace needs start")
        if self.step_s <= 0:
            raise ValueError(f"step_s {self.step_s!r} must be greater than 0")
        return self


class _NodeOverride(_Strict):
    capacity: float | None = None
    speed: float = 1.0

    @field_validator("capacity", "speed")
    @classmethod
    def _pos(cls, v: float | None) -> float | None:
        return _positive(v)


class _Simulation(_Strict):
    name: str = "simulation"
    topology: str
    profiles: str
    resources: dict[str, str]
    model: str
    arrivals: _Arrivals
    stop: _Stop
    policies: list[_Policy]
    seeds: list[int] = [1]
    warmup_s: float = 0.0
    input_bytes: float | None = None
    service: Literal["auto", "deterministic", "exponential", "empirical", "lognormal"] = "auto"
    service_cv: float = 0.1
    nodes: dict[str, _NodeOverride] = {}
    conditions: list[_Condition] = []
    records: bool = False
    reply: bool = False
    max_in_flight: int = 10_000
    drain_limit_s: float | None = None

    @field_validator("policies")
    @classmethod
    def _policies(cls, v: list[_Policy]) -> list[_Policy]:
        if not v:
            raise ValueError("list at least one policy")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("list at least one seed")
        if len(set(v)) != len(v):
            raise ValueError(f"seeds {v} repeat a value")
        return v

    @field_validator("warmup_s", "service_cv")
    @classmethod
    def _nonneg(cls, v: float) -> float:
        return _positive(v, strict=False)

    @field_validator("input_bytes", "drain_limit_s")
    @classmethod
    def _pos(cls, v: float | None) -> float | None:
        return _positive(v)

    @field_validator("max_in_flight")
    @classmethod
    def _mif(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"{v!r} must be at least 1")
        return v


def _link_pair(text: str, where: str) -> tuple[str, str]:
    # Node names may contain '-', so 'device-1-edge' is ambiguous; accept 'a>b', 'a,b' or a plain 'a-b'.
    for sep in (">", ",", " "):
        if sep in text:
            a, b = (p.strip() for p in text.split(sep, 1))
            return a, b
    parts = text.split("-")
    if len(parts) == 2:
        return parts[0], parts[1]
    raise SimulationFileError(f"{where}.link: {text!r} is ambiguous; write it as 'a>b' (e.g. 'device-1>edge')")


def simulation_from_dict(data: Any, base_dir: str | Path = ".", source: Path | None = None) -> SimulationSpec:
    """Validate a parsed document; relative paths are resolved against base_dir."""
    base = Path(base_dir)
    if not isinstance(data, dict):
        raise SimulationFileError("a simulation file must be a mapping (topology, profiles, resources, model, ...)")
    try:
        m = _Simulation.model_validate(data)
    except ValidationError as exc:
        raise SimulationFileError(validation_message(exc)) from None

    def resolve(p: str) -> Path:
        path = Path(p)
        return path if path.is_absolute() else base / path

    a = m.arrivals
    arrivals = ArrivalSpec(
        kind=a.kind,
        rate_per_s=a.rate_per_s,
        trace_path=resolve(a.path) if a.path else None,
        concurrency=a.concurrency,
        think_s=a.think_s,
        devices=tuple(a.devices),
    )
    policies = []
    seen: dict[str, int] = {}
    for p in m.policies:
        name = p.name or p.kind
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name}-{seen[name]}"
        policies.append(
            PolicySpec(
                kind=p.kind, name=name, configuration=p.configuration, rank=p.rank, period_s=p.period_s,
                overhead_s=p.overhead_s, probe_period_s=p.probe_period_s, probe_bytes=p.probe_bytes,
                probe_work_s=p.probe_work_s, probe_nodes=p.probe_nodes, threshold_pct=p.threshold_pct, confirm=max(1, p.confirm),
                cooldown_s=p.cooldown_s, alpha=p.alpha,
            )
        )
    conditions = []
    for i, c in enumerate(m.conditions):
        where = f"conditions[{i}]"
        target = "link" if c.link is not None else "node"
        points = c.bandwidth_mbps if target == "link" else c.load
        conditions.append(
            ConditionSpec(
                kind=c.kind,
                target=target,
                link=_link_pair(c.link, where) if c.link is not None else None,
                node=c.node,
                points=tuple((float(t), float(v)) for t, v in (points or ())),
                csv_path=resolve(c.path) if c.path else None,
                start=c.start,
                step_s=c.step_s,
                sigma_pct=c.sigma_pct,
                reversion=c.reversion,
                minimum=c.min,
                maximum=c.max,
                where=where,
            )
        )
    return SimulationSpec(
        name=m.name,
        topology_path=resolve(m.topology),
        profiles_path=resolve(m.profiles),
        resources=dict(m.resources),
        model=m.model.lower(),
        arrivals=arrivals,
        policies=tuple(policies),
        seeds=tuple(m.seeds),
        duration_s=m.stop.duration_s,
        requests=m.stop.requests,
        warmup_s=m.warmup_s,
        input_bytes=m.input_bytes,
        service=m.service,
        service_cv=m.service_cv,
        nodes={k: NodeOverride(v.capacity, v.speed) for k, v in m.nodes.items()},
        conditions=tuple(conditions),
        records=m.records,
        reply=m.reply,
        max_in_flight=m.max_in_flight,
        drain_limit_s=m.drain_limit_s,
        source=source,
    )


def load_simulation(path: str | Path) -> SimulationSpec:
    """Read a simulation YAML file; every problem is one SimulationFileError naming the file and field."""

    path = Path(path)
    data = read_yaml(path, SimulationFileError, "simulation file")
    try:
        return simulation_from_dict(data, path.parent, source=path)
    except SimulationFileError as exc:
        raise SimulationFileError(f"{path}: {exc}") from None
