"""Simulation files: YAML checked by pydantic into frozen spec objects (each field written once, here).

Every error is a SimulationFileError whose message starts with the file and the field path, e.g.
"sim.yaml: policies[1].period_s: must be greater than 0". Paths in the file (topology, profiles,
traces) are relative to the file's own folder; the specs hold them resolved. Attribute names are the
file's keys; derived views (a condition's ``target`` and ``points``, the stop rule's ``duration_s`` and
``requests``) are properties. Change a loaded spec with ``spec.model_copy(update={...})``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import PrivateAttr, ValidationError, ValidationInfo, field_validator, model_validator

from scission import quantities
from scission.files import read_yaml, validation_message
from testbed.errors import SimulationFileError
from testbed.policies.plans import REFRESH_MODES
from testbed.schema import Strict, at_least, named_quantity, positive

__all__ = [
    "ArrivalSpec",
    "ConditionSpec",
    "NodeOverride",
    "PolicySpec",
    "SimulationSpec",
    "StopSpec",
    "load_simulation",
    "simulation_from_dict",
]

_ADAPTING_KINDS = ("static", "oracle", "periodic", "adaptive")  # plus '<tier>-only' for every tier


def _resolved(value: str | Path | None, info: ValidationInfo) -> Path | None:
    """A path from the file, relative to the file's folder (the validation context's 'base')."""
    if value is None:
        return None
    path = Path(value)
    base = (info.context or {}).get("base")
    return path if path.is_absolute() or base is None else Path(base) / path


class ArrivalSpec(Strict):
    """How requests enter: per device, a Poisson or fixed rate, a trace of times, or a closed loop."""

    kind: Literal["poisson", "fixed", "trace", "closed"]
    rate_per_s: float | None = None
    path: Path | None = None  # trace: a CSV with a time_s column (and optionally device)
    concurrency: int = 1
    think_s: float = 0.0
    devices: tuple[str, ...] = ()  # empty: every node of the first tier with a resource

    _path = field_validator("path", mode="before")(_resolved)
    _units = field_validator("rate_per_s", "think_s", mode="before")(named_quantity)

    @field_validator("rate_per_s")
    @classmethod
    def _rate(cls, v: float | None) -> float | None:
        return positive(v)

    @field_validator("think_s")
    @classmethod
    def _think(cls, v: float) -> float:
        return positive(v, strict=False)

    @field_validator("concurrency")
    @classmethod
    def _conc(cls, v: int) -> int:
        return at_least(v, 1)

    @model_validator(mode="after")
    def _needs(self) -> ArrivalSpec:
        if self.kind in ("poisson", "fixed") and self.rate_per_s is None:
            raise ValueError(f"arrivals of kind {self.kind} need rate_per_s")
        if self.kind == "trace" and not self.path:
            raise ValueError("arrivals of kind trace need path (a CSV with a time_s column)")
        return self


class StopSpec(Strict):
    """When arrivals stop: after duration_s of simulated time or after a number of requests."""

    duration_s: float | None = None
    requests: int | None = None

    _units = field_validator("duration_s", mode="before")(named_quantity)

    @field_validator("duration_s")
    @classmethod
    def _dur(cls, v: float | None) -> float | None:
        return positive(v)

    @field_validator("requests")
    @classmethod
    def _req(cls, v: int | None) -> int | None:
        return at_least(v, 1)

    @model_validator(mode="after")
    def _one(self) -> StopSpec:
        if (self.duration_s is None) == (self.requests is None):
            raise ValueError("give exactly one of duration_s or requests")
        return self


class PolicySpec(Strict):
    """One policy to run; fields that its kind does not use stay None. ``name`` defaults to the kind."""

    kind: str
    name: str | None = None
    configuration: str | None = None
    rank: int | None = None
    period_s: float | None = None
    overhead_s: float | None = None
    refresh: str | None = None  # benchmark | recalibrate | none; default: periodic benchmark, adaptive none
    probe_period_s: float = 5.0
    probe_bytes: float = 20_000.0
    probe_work_s: float = 0.005
    probe_nodes: bool = False
    threshold_pct: float = 25.0
    confirm: int = 2
    cooldown_s: float = 10.0
    alpha: float = 0.5

    _units = field_validator("period_s", "overhead_s", "probe_period_s", "probe_bytes", "probe_work_s",
                             "threshold_pct", "cooldown_s", mode="before")(named_quantity)

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        # '<tier>-only' is checked against the topology's tiers when the world is built.
        if v not in _ADAPTING_KINDS and not (v.endswith("-only") and len(v) > len("-only")):
            raise ValueError(f"{v!r} is not allowed; input should be 'static', '<tier>-only' (e.g. 'device-only', "
                             "'edge-only', 'cloud-only'), 'oracle', 'periodic' or 'adaptive'")
        return v

    @field_validator("refresh")
    @classmethod
    def _refresh(cls, v: str | None) -> str | None:
        if v is not None and v not in REFRESH_MODES:
            raise ValueError(f"{v!r} is not allowed; input should be 'benchmark', 'recalibrate' or 'none'")
        return v

    @field_validator("period_s", "probe_period_s", "probe_bytes", "probe_work_s", "threshold_pct")
    @classmethod
    def _pos(cls, v: float | None) -> float | None:
        return positive(v)

    @field_validator("overhead_s", "cooldown_s")
    @classmethod
    def _nonneg(cls, v: float | None) -> float | None:
        return positive(v, strict=False)

    @field_validator("confirm")
    @classmethod
    def _confirm(cls, v: int) -> int:
        return max(1, v)

    @field_validator("alpha")
    @classmethod
    def _alpha(cls, v: float) -> float:
        if not 0 < v <= 1:
            raise ValueError(f"{v!r} must be in (0, 1]")
        return v

    @model_validator(mode="after")
    def _needs(self) -> PolicySpec:
        if self.kind == "static" and (self.configuration is None) == (self.rank is None):
            raise ValueError("a static policy needs exactly one of configuration (e.g. 'device:0-9,edge:10-65') or rank")
        if self.rank is not None and self.rank < 1:
            raise ValueError(f"rank {self.rank} must be at least 1")
        if self.kind == "periodic" and self.period_s is None:
            raise ValueError("a periodic policy needs period_s")
        if self.refresh is not None and self.kind not in ("periodic", "adaptive"):
            raise ValueError(f"refresh {self.refresh!r}: only periodic and adaptive policies refresh their profiles")
        if self.kind == "periodic" and self.refresh == "none":
            raise ValueError("a periodic policy refreshes by 'benchmark' or 'recalibrate', not 'none'")
        return self

    @property
    def is_native(self) -> bool:
        """A '<tier>-only' policy: every block on one tier."""
        return self.kind.endswith("-only")


def _link_pair(text: str) -> tuple[str, str]:
    # Node names may contain '-', so 'device-1-edge' is ambiguous; accept 'a>b', 'a,b' or a plain 'a-b'.
    for sep in (">", ",", " "):
        if sep in text:
            a, b = (p.strip() for p in text.split(sep, 1))
            return a, b
    parts = text.split("-")
    if len(parts) == 2:
        return parts[0], parts[1]
    raise ValueError(f"{text!r} is ambiguous; write it as 'a>b' (e.g. 'device-1>edge')")


def _bandwidth_mbps(value: Any) -> Any:
    return value if isinstance(value, int | float) else quantities.parse_rate_mbps(value, bare="Mbit/s")


def _load_fraction(value: Any) -> Any:
    """Bare numbers pass (the trace checks their range and says that they are fractions); '60%' -> 0.6."""
    return value if isinstance(value, int | float) else quantities.parse_fraction(value)


def _is_pair(point: Any) -> bool:
    return (isinstance(point, list | tuple) and len(point) == 2 and not isinstance(point[1], bool)
            and isinstance(point[1], int | float | str))


class ConditionSpec(Strict):
    """A bandwidth (link, both directions) or background-load (node) trace: step, random walk or CSV."""

    kind: Literal["step", "random-walk", "csv"]
    link: tuple[str, str] | None = None  # 'a>b' (or 'a-b', 'a,b', [a, b]) in the file
    node: str | None = None
    bandwidth_mbps: list[tuple[float, float]] | None = None  # step on a link: [[time_s, value], ...]
    load: list[tuple[float, float]] | None = None  # step on a node
    path: Path | None = None  # csv: columns time_s and bandwidth_mbps / load (or value)
    start: float | None = None  # random walk: Mbit/s for a link, a fraction for a node (or '1.6Mbit/s', '20%')
    step_s: float = 1.0
    sigma_pct: float = 10.0
    reversion: float = 0.0  # random walk: fraction of the way back to start per step (0: a pure walk)
    min: float | None = None
    max: float | None = None
    _where: str = PrivateAttr("condition")

    _path = field_validator("path", mode="before")(_resolved)
    _units = field_validator("step_s", "sigma_pct", mode="before")(named_quantity)

    @model_validator(mode="before")
    @classmethod
    def _quantities(cls, data: Any) -> Any:
        """Trace values in the one grammar: a link's in Mbit/s (bare, as the name bandwidth_mbps says, or
        '20Mbit/s'), a node's load a fraction (bare 0-1, or '60%'); start/min/max of a random walk alike."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        on_link = data.get("link") is not None
        parse = _bandwidth_mbps if on_link else _load_fraction
        for key in ("bandwidth_mbps", "load"):
            if isinstance(data.get(key), list | tuple):
                data[key] = [[p[0], parse(p[1])] if _is_pair(p) else p for p in data[key]]
        for key in ("start", "min", "max"):
            if isinstance(data.get(key), int | float | str) and not isinstance(data[key], bool):
                data[key] = parse(data[key])
        return data

    @field_validator("link", mode="before")
    @classmethod
    def _link(cls, v: Any) -> Any:
        return _link_pair(v) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _target(self) -> ConditionSpec:
        if (self.link is None) == (self.node is None):
            raise ValueError("give exactly one of link (bandwidth trace) or node (background-load trace)")
        if self.kind == "step" and not self.points:
            raise ValueError(f"a step trace on a {self.target} needs {self.quantity}: [[time_s, value], ...]")
        if self.kind == "csv" and not self.path:
            raise ValueError("a csv trace needs path")
        if self.kind == "random-walk" and self.start is None:
            raise ValueError("a random-walk trace needs start")
        if self.step_s <= 0:
            raise ValueError(f"step_s {self.step_s!r} must be greater than 0")
        return self

    @property
    def target(self) -> str:
        return "link" if self.link is not None else "node"

    @property
    def quantity(self) -> str:
        return "bandwidth_mbps" if self.target == "link" else "load"

    @property
    def points(self) -> tuple[tuple[float, float], ...]:
        """A step trace's (time_s, value) changes."""
        points = self.bandwidth_mbps if self.target == "link" else self.load
        return tuple((float(t), float(v)) for t, v in points or ())

    @property
    def where(self) -> str:
        """The field path in the file, for error messages: 'conditions[2]'."""
        return self._where


class NodeOverride(Strict):
    """capacity: requests served at full speed at once (default max(1, cpus)); speed divides block times."""

    capacity: float | None = None
    speed: float = 1.0

    @field_validator("capacity", "speed")
    @classmethod
    def _pos(cls, v: float | None) -> float | None:
        return positive(v)


class SimulationSpec(Strict):
    """A simulation file: a world (topology, profiles, resources, model), arrivals, a stop rule, policies."""

    name: str = "simulation"
    topology: Path
    profiles: Path
    resources: dict[str, str]
    model: str
    arrivals: ArrivalSpec
    stop: StopSpec
    policies: tuple[PolicySpec, ...]
    seeds: tuple[int, ...] = (1,)
    warmup_s: float = 0.0
    input_bytes: float | None = None
    service: Literal["auto", "deterministic", "exponential", "empirical", "lognormal"] = "auto"
    service_cv: float = 0.1
    nodes: dict[str, NodeOverride] = {}
    conditions: tuple[ConditionSpec, ...] = ()
    records: bool = False
    reply: bool = False
    max_in_flight: int = 10_000
    drain_limit_s: float | None = None
    _source: Path | None = PrivateAttr(None)

    _paths = field_validator("topology", "profiles", mode="before")(_resolved)
    _units = field_validator("warmup_s", "input_bytes", "drain_limit_s", mode="before")(named_quantity)

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        return v.lower()

    @field_validator("policies")
    @classmethod
    def _policies(cls, v: tuple[PolicySpec, ...]) -> tuple[PolicySpec, ...]:
        if not v:
            raise ValueError("list at least one policy")
        named, seen = [], {}
        for p in v:  # unnamed policies take their kind's name; repeats get -2, -3, ...
            name = p.name or p.kind
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                name = f"{name}-{seen[name]}"
            named.append(p if name == p.name else p.model_copy(update={"name": name}))
        return tuple(named)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v:
            raise ValueError("list at least one seed")
        if len(set(v)) != len(v):
            raise ValueError(f"seeds {list(v)} repeat a value")
        return v

    @field_validator("warmup_s", "service_cv")
    @classmethod
    def _nonneg(cls, v: float) -> float:
        return positive(v, strict=False)

    @field_validator("input_bytes", "drain_limit_s")
    @classmethod
    def _pos(cls, v: float | None) -> float | None:
        return positive(v)

    @field_validator("max_in_flight")
    @classmethod
    def _mif(cls, v: int) -> int:
        return at_least(v, 1)

    def model_post_init(self, _context: Any) -> None:
        for i, c in enumerate(self.conditions):
            c._where = f"conditions[{i}]"

    @property
    def duration_s(self) -> float | None:
        return self.stop.duration_s

    @property
    def requests(self) -> int | None:
        return self.stop.requests

    @property
    def source(self) -> Path | None:
        """The file it was loaded from (None when built from a dict)."""
        return self._source

    def with_stop(self, duration_s: float | None = None, requests: int | None = None) -> SimulationSpec:
        """A copy with another stop rule (exactly one of the two)."""
        return self.model_copy(update={"stop": StopSpec(duration_s=duration_s, requests=requests)})

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> SimulationSpec:
        """pydantic's copy, refusing names that are not fields (``requests`` is ``with_stop``'s job)."""
        unknown = sorted(set(update or ()) - set(type(self).model_fields))
        if unknown:
            raise TypeError(f"SimulationSpec has no field {', '.join(unknown)}; stop rules change with with_stop()")
        return super().model_copy(update=update, deep=deep)


def simulation_from_dict(data: Any, base_dir: str | Path = ".", source: Path | None = None) -> SimulationSpec:
    """Validate a parsed document; relative paths are resolved against base_dir."""
    if not isinstance(data, dict):
        raise SimulationFileError("a simulation file must be a mapping (topology, profiles, resources, model, ...)")
    try:
        spec = SimulationSpec.model_validate(data, context={"base": Path(base_dir)})
    except ValidationError as exc:
        raise SimulationFileError(validation_message(exc)) from None
    spec._source = source
    return spec


def load_simulation(path: str | Path) -> SimulationSpec:
    """Read a simulation YAML file; every problem is one SimulationFileError naming the file and field."""
    path = Path(path)
    data = read_yaml(path, SimulationFileError, "simulation file")
    try:
        return simulation_from_dict(data, path.parent, source=path)
    except SimulationFileError as exc:
        raise SimulationFileError(f"{path}: {exc}") from None
