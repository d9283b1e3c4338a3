"""Topology spec and loader: nodes with CPU/memory limits and links with rate, RTT, jitter and loss (pure).

A topology file is YAML with explicit units; pydantic checks its shape, then it becomes frozen
dataclasses. Every error is a TopologyError whose message starts with the field path, e.g.
"links[1].bandwidth: '20' has no unit; write e.g. '20Mbit/s' ...". Quantities follow the one grammar of
scission.quantities; a bare number only where the field's name carries its unit (``bandwidth_mbps: 20``).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from emulator.errors import TopologyError
from scission import quantities
from scission.files import load_document, validation_message
from scission.problem import DEFAULT_TIERS

__all__ = [
    "LinkSpec",
    "NodeSpec",
    "TopologySpec",
    "check_fits_host",
    "host_cpus",
    "load_topology",
    "parse_bandwidth_mbps",
    "parse_duration_ms",
    "parse_loss_pct",
    "parse_memory_bytes",
    "topology_from_dict",
]

_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
MIN_MEMORY_BYTES = 64 * 2**20


def parse_bandwidth_mbps(value: Any, bare: str | None = None) -> float:
    """'1.6mbit' -> 1.6; '500kbit' -> 0.5; '1MB/s' -> 8 (the one grammar, scission.quantities)."""
    return quantities.parse_rate_mbps(value, bare)


def parse_duration_ms(value: Any, bare: str | None = None) -> float:
    """'66.7ms' -> 66.7; '0.1s' -> 100; '500us' -> 0.5; a bare 0 needs no unit."""
    return quantities.parse_duration_ms(value, bare, allow_bare_zero=True)


def parse_loss_pct(value: Any, bare_is_percent: bool = False) -> float:
    """'1%' -> 1.0; 0 may be written bare because zero loss has no unit to get wrong."""
    return quantities.parse_percent(value, bare_is_percent)


def parse_memory_bytes(value: Any, bare: str | None = None) -> int:
    """'512MB' -> 512 * 10^6, '512MiB' or Docker's '512m' -> 512 * 2^20 (docker gets the bytes)."""
    size = int(quantities.parse_size_bytes(value, bare))
    if size < MIN_MEMORY_BYTES:
        raise ValueError(f"{value!r} is below the 64MiB a node needs")
    return size


def _named_units(data: Any, fields: dict[str, tuple[str, Any, str]]) -> Any:
    """Fields whose name carries the unit (``rtt_ms: 20``) take bare numbers; fold them into the unit-less key.

    The rule every loader follows: a bare number only where the field name says its unit.
    """
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for named, (plain, parse, unit) in fields.items():
        if named in data:
            if plain in data:
                raise ValueError(f"give {plain} or {named}, not both")
            try:
                data[plain] = f"{parse(data.pop(named))!r}{unit}"  # exact: repr reads back, the factor is 1
            except ValueError as exc:
                raise ValueError(f"{named}: {exc}") from None
    return data


@dataclass(frozen=True)
class NodeSpec:
    """One container: a tier (one of the topology's ordered tiers) with a CPU share (cores) and a memory cap."""

    name: str
    tier: str
    cpus: float
    memory_bytes: int

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise TopologyError(
                f"node name {self.name!r} must be lower-case letters, digits and '-', starting with a letter, max 31"
            )
        if not _NAME_RE.match(self.tier):
            raise TopologyError(f"node {self.name}: tier {self.tier!r} must be a lower-case name like edge")
        if not (math.isfinite(self.cpus) and self.cpus > 0):
            raise TopologyError(f"node {self.name}: cpus {self.cpus} must be greater than zero")
        if self.memory_bytes <= 0:
            raise TopologyError(
                f"node {self.name}: memory {self.memory_bytes} bytes must be greater than zero"
            )


@dataclass(frozen=True)
class LinkSpec:
    """An undirected link shaped the same way in both directions; rtt_ms is split half per direction."""

    a: str
    b: str
    bandwidth_mbps: float
    rtt_ms: float
    jitter_ms: float = 0.0
    loss_pct: float = 0.0

    def __post_init__(self) -> None:
        where = f"link {self.a}-{self.b}"
        if self.a == self.b:
            raise TopologyError(f"{where}: a link needs two different nodes")
        if not (math.isfinite(self.bandwidth_mbps) and self.bandwidth_mbps > 0):
            raise TopologyError(f"{where}: bandwidth {self.bandwidth_mbps} Mbit/s must be greater than zero")
        if not (math.isfinite(self.rtt_ms) and self.rtt_ms >= 0):
            raise TopologyError(f"{where}: rtt {self.rtt_ms} ms must be >= 0")
        if not (math.isfinite(self.jitter_ms) and self.jitter_ms >= 0):
            raise TopologyError(f"{where}: jitter {self.jitter_ms} ms must be >= 0")
        if not (math.isfinite(self.loss_pct) and 0 <= self.loss_pct <= 100):
            raise TopologyError(f"{where}: loss {self.loss_pct}% outside 0-100%")

    @property
    def one_way_delay_ms(self) -> float:
        return self.rtt_ms / 2

    @property
    def key(self) -> tuple[str, str]:
        """Order-independent identity: the two node names sorted."""
        return tuple(sorted((self.a, self.b)))  # type: ignore[return-value]

    def connects(self, x: str, y: str) -> bool:
        return {x, y} == {self.a, self.b}

    def with_changes(self, **changes: float) -> LinkSpec:
        return replace(self, **changes)


@dataclass(frozen=True)
class TopologySpec:
    """A named set of nodes and links; nodes without a link between them cannot reach each other.

    ``tiers`` orders the tiers from the device (which holds the input) outwards, as scission's search
    takes them; every node belongs to one. ``source`` is the file it was read from (None when built in
    code), so checks made after loading (check_fits_host) can name the file as the loader's messages do.
    """

    name: str
    nodes: tuple[NodeSpec, ...]
    links: tuple[LinkSpec, ...]
    tiers: tuple[str, ...] = DEFAULT_TIERS
    source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise TopologyError(
                f"name {self.name!r} must be lower-case letters, digits and '-', starting with a letter, max 31"
            )
        if not self.nodes:
            raise TopologyError("nodes: a topology needs at least one node")
        if len(set(self.tiers)) != len(self.tiers) or not self.tiers:
            raise TopologyError(f"tiers: {list(self.tiers)} must name each tier once, the device's first")
        seen: set[str] = set()
        for i, node in enumerate(self.nodes):
            if node.tier not in self.tiers:
                raise TopologyError(f"nodes[{i}].tier: {node.tier!r} is not one of {', '.join(self.tiers)}")
            if node.name in seen:
                raise TopologyError(f"nodes[{i}].name: duplicate node name {node.name!r}")
            seen.add(node.name)
        pairs: set[tuple[str, str]] = set()
        for i, link in enumerate(self.links):
            for end in ("a", "b"):
                if getattr(link, end) not in seen:
                    raise TopologyError(
                        f"links[{i}].{end}: unknown node {getattr(link, end)!r}; known: {', '.join(sorted(seen))}"
                    )
            if link.key in pairs:
                raise TopologyError(f"links[{i}]: duplicate link {link.a}-{link.b}")
            pairs.add(link.key)

    def node(self, name: str) -> NodeSpec | None:
        return next((n for n in self.nodes if n.name == name), None)

    def link(self, a: str, b: str) -> LinkSpec | None:
        return next((lk for lk in self.links if lk.connects(a, b)), None)

    def neighbours(self, name: str) -> tuple[str, ...]:
        return tuple(lk.b if lk.a == name else lk.a for lk in self.links if name in (lk.a, lk.b))

    def with_link(self, link: LinkSpec) -> TopologySpec:
        """A copy with the link between link.a and link.b replaced (runtime changes keep the spec current)."""
        if self.link(link.a, link.b) is None:
            raise TopologyError(f"no link {link.a}-{link.b} in topology {self.name}")
        links = tuple(link if lk.connects(link.a, link.b) else lk for lk in self.links)
        return replace(self, links=links)

    def with_node(self, node: NodeSpec) -> TopologySpec:
        if self.node(node.name) is None:
            raise TopologyError(f"no node {node.name} in topology {self.name}")
        return replace(self, nodes=tuple(node if n.name == node.name else n for n in self.nodes))

    def to_dict(self) -> dict[str, Any]:
        """The YAML form back (numbers with units), so a running topology can be saved and reloaded.

        Numbers are written with repr so they load back exactly (a '%g' would round 1000.001 to 1000).
        """
        out: dict[str, Any] = {"name": self.name}
        if self.tiers != DEFAULT_TIERS:
            out["tiers"] = list(self.tiers)
        return out | {
            "nodes": [
                {"name": n.name, "tier": n.tier, "cpus": n.cpus, "memory": f"{n.memory_bytes}B"}
                for n in self.nodes
            ],
            "links": [
                {
                    "a": lk.a,
                    "b": lk.b,
                    "bandwidth": f"{lk.bandwidth_mbps!r}mbit",
                    "rtt": f"{lk.rtt_ms!r}ms",
                    "jitter": f"{lk.jitter_ms!r}ms",
                    "loss": f"{lk.loss_pct!r}%",
                }
                for lk in self.links
            ],
        }


def host_cpus() -> int:
    """The cores this host gives containers: the ceiling of every node's CPU limit and of their sum."""
    return os.cpu_count() or 1


def check_fits_host(spec: TopologySpec, host_cpus: int | None = None) -> None:
    """Refuse nodes asking for more cores than the host has (docker would refuse later, after starting others)."""
    host_cpus = host_cpus or os.cpu_count() or 1  # the keyword shadows host_cpus(); same rule
    where = f"{spec.source}: " if spec.source else ""
    for i, node in enumerate(spec.nodes):
        if node.cpus > host_cpus:
            raise TopologyError(
                f"{where}nodes[{i}].cpus: {node.cpus:g} for node {node.name} is more than the {host_cpus} cpus "
                "this host has"
            )


# --- file schema (pydantic) ------------------------------------------------------------------------


class _NodeModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    tier: str
    cpus: float
    memory: int

    @model_validator(mode="before")
    @classmethod
    def _named(cls, data: Any) -> Any:
        return _named_units(data, {"memory_bytes": ("memory", lambda v: parse_memory_bytes(v, bare="B"), "B")})

    @field_validator("cpus", mode="before")
    @classmethod
    def _cpus(cls, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{value!r} is not a number of cores; write e.g. 0.5")
        if not value > 0:
            raise ValueError(f"{value!r} must be greater than zero")
        return float(value)

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> int:
        return parse_memory_bytes(value)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError(
                f"{value!r} must be lower-case letters, digits and '-', starting with a letter, max 31"
            )
        return value


class _LinkModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: str
    b: str
    bandwidth: float
    rtt: float
    jitter: float = 0.0
    loss: float = 0.0

    @model_validator(mode="before")
    @classmethod
    def _named(cls, data: Any) -> Any:
        return _named_units(data, {
            "bandwidth_mbps": ("bandwidth", lambda v: parse_bandwidth_mbps(v, bare="Mbit/s"), "Mbit/s"),
            "rtt_ms": ("rtt", lambda v: parse_duration_ms(v, bare="ms"), "ms"),
            "jitter_ms": ("jitter", lambda v: parse_duration_ms(v, bare="ms"), "ms"),
            "loss_pct": ("loss", lambda v: parse_loss_pct(v, bare_is_percent=True), "%"),
        })

    @field_validator("bandwidth", mode="before")
    @classmethod
    def _bandwidth(cls, value: Any) -> float:
        return parse_bandwidth_mbps(value)

    @field_validator("rtt", "jitter", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration_ms(value)

    @field_validator("loss", mode="before")
    @classmethod
    def _loss(cls, value: Any) -> float:
        return parse_loss_pct(value)


class _TopologyModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    tiers: list[str] = list(DEFAULT_TIERS)
    nodes: list[_NodeModel]
    links: list[_LinkModel] = []


def topology_from_dict(data: Any) -> TopologySpec:
    """Validate a parsed YAML document; raises TopologyError naming the first bad field."""
    if not isinstance(data, dict):
        raise TopologyError("a topology must be a mapping with name, nodes and links")
    try:
        model = _TopologyModel.model_validate(data)
    except ValidationError as exc:
        raise TopologyError(validation_message(exc)) from None
    nodes = tuple(NodeSpec(n.name, n.tier, n.cpus, n.memory) for n in model.nodes)
    links = tuple(LinkSpec(lk.a, lk.b, lk.bandwidth, lk.rtt, lk.jitter, lk.loss) for lk in model.links)
    return TopologySpec(model.name, nodes, links, tuple(model.tiers))


def load_topology(path: str | Path) -> TopologySpec:
    """Read and validate a topology YAML file; every problem is one TopologyError line naming file and field."""
    spec = load_document(path, TopologyError, "topology file", lambda data, _folder: topology_from_dict(data))
    return replace(spec, source=str(path))
