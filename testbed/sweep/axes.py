"""The axes a sweep may vary: their units, result-column names, and how each changes a base file.

Values are parsed at the edge into one canonical unit per axis (the column name says which), so a
results table never mixes units. Each axis knows how to apply a value to a simulation document (a
dict, before validation) and, for emulated runs, to an experiment document; topology changes are
written to a derived topology file in the point's work folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from scission import quantities
from scission.files import atomic_write_text
from scission.quantities import QuantityError
from testbed.errors import SweepError
from testbed.policies.plans import REFRESH_MODES


@dataclass(frozen=True)
class AxisKind:
    name: str  # the axis as written in a sweep file
    column: str  # the results column (unit in the name)
    unit_kind: str | None  # a scission.quantities parser below, or None for names
    example: str = ""


def _loss_pct(raw: Any, unit: str | None) -> float:
    if unit not in (None, "%"):
        raise QuantityError(f"unit {unit!r} is wrong for loss; give percentages ('1%', or `unit: '%'`)")
    return quantities.parse_percent(raw, bare_is_percent=unit == "%")


def _fraction(raw: Any, unit: str | None) -> float:
    if unit == "%":
        return quantities.parse_percent(raw, bare_is_percent=True) / 100
    if unit is not None:
        raise QuantityError(f"unit {unit!r} is wrong for a fraction; give 0.6 or '60%' (or `unit: '%'`)")
    return quantities.parse_fraction(raw)


# Every quantity goes through scission.quantities (the one grammar); `unit:` names the unit of bare numbers.
_PARSERS = {
    "rate": lambda raw, unit: quantities.parse_rate_mbps(raw, unit),
    "duration_ms": lambda raw, unit: quantities.parse_duration_ms(raw, unit, allow_bare_zero=True),
    "duration_s": lambda raw, unit: quantities.parse_duration_s(raw, unit),
    "size": lambda raw, unit: quantities.parse_size_bytes(raw, unit),
    "request_rate": lambda raw, unit: quantities.parse_request_rate_per_s(raw, unit),
    "percent": _loss_pct,
    "fraction": _fraction,
}

AXES: dict[str, AxisKind] = {
    a.name: a
    for a in [
        AxisKind("bandwidth", "bandwidth_mbps", "rate", "'20Mbit/s'"),
        AxisKind("rtt", "rtt_ms", "duration_ms", "'20ms'"),
        AxisKind("loss", "loss_pct", "percent", "'1%'"),  # percent, like the topology's loss
        AxisKind("background_load", "background_load_fraction", "fraction", "0.6 or '60%'"),
        AxisKind("arrival_rate", "arrival_rate_per_s", "request_rate", "'5/s'"),
        AxisKind("benchmark_period", "benchmark_period_s", "duration_s", "'30s'"),
        AxisKind("input_size", "input_size_bytes", "size", "'0.15MB'"),
        AxisKind("model", "model", None),
        AxisKind("policy", "policy", None),
        AxisKind("refresh", "refresh", None, "benchmark or recalibrate"),  # how periodic/adaptive refresh profiles
    ]
}


def parse_value(axis: AxisKind, raw: Any, unit: str | None, where: str) -> Any:
    """One axis value in the axis's canonical unit (its column's); a wrong or missing unit is one SweepError."""
    if axis.unit_kind is None:
        if not isinstance(raw, str) or not raw.strip():
            raise SweepError(f"{where}: {raw!r} is not a {axis.name} name")
        if axis.name == "refresh" and raw.strip() not in REFRESH_MODES:
            raise SweepError(f"{where}: {raw.strip()!r} is not one of {', '.join(REFRESH_MODES)}")
        return raw.strip()
    try:
        return _PARSERS[axis.unit_kind](raw, unit)
    except QuantityError as exc:
        hint = " (or give `unit:`)" if unit is None and "has no unit" in str(exc) else ""
        raise SweepError(f"{where}: {exc}{hint}") from None


# ------------------------------------------------------------------------------------------ applying


@dataclass(frozen=True)
class Target:
    """Which links or nodes an axis changes; None means the axis's default (device uplinks, edge nodes)."""

    links: tuple[tuple[str, str], ...] | None = None
    nodes: tuple[str, ...] | None = None


def _load_topology_doc(path: Path) -> dict:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SweepError(f"topology {path} (named by the base file) does not exist") from None


def _tiers(doc: dict) -> dict[str, str]:
    return {n["name"]: n.get("tier", "") for n in doc.get("nodes", [])}


def _selected_links(doc: dict, target: Target) -> list[dict]:
    tiers = _tiers(doc)
    links = doc.get("links", [])
    if target.links is None:
        chosen = [ln for ln in links if "device" in (tiers.get(ln["a"]), tiers.get(ln["b"]))]
    else:
        wanted = {frozenset(p) for p in target.links}
        chosen = [ln for ln in links if frozenset((ln["a"], ln["b"])) in wanted]
        if len(chosen) != len(wanted):
            raise SweepError(f"axis links {list(target.links)} are not all links of the base topology")
    return chosen


class Applier:
    """Applies axis values to a base document, writing a derived topology when links change."""

    def __init__(self, base_doc: dict, base_dir: Path, topology_key: str = "topology"):
        self.doc = yaml.safe_load(yaml.safe_dump(base_doc))  # deep copy
        self.base_dir = base_dir
        self.topology_key = topology_key
        self._topology: dict | None = None

    def topology(self) -> dict:
        if self._topology is None:
            path = Path(self.doc[self.topology_key])
            if not path.is_absolute():
                path = self.base_dir / path
            self._topology = _load_topology_doc(path)
        return self._topology

    def finish(self, work_dir: Path) -> dict:
        """The changed document with absolute paths; a changed topology is written into work_dir."""
        if self._topology is not None:
            work_dir.mkdir(parents=True, exist_ok=True)
            path = work_dir.resolve() / "topology.yaml"
            atomic_write_text(path, yaml.safe_dump(self._topology, sort_keys=False))
            self.doc[self.topology_key] = str(path)
        return self.doc


def apply_simulation(applier: Applier, axis: str, value: Any, target: Target) -> None:
    doc = applier.doc
    if axis in ("bandwidth", "rtt", "loss"):
        field, text = {"bandwidth": ("bandwidth", f"{value!r}Mbit/s"), "rtt": ("rtt", f"{value!r}ms"),
                       "loss": ("loss", f"{value!r}%")}[axis]
        for link in _selected_links(applier.topology(), target):
            link[field] = text
    elif axis == "background_load":
        nodes = target.nodes or tuple(n for n, t in _tiers(applier.topology()).items() if t == "edge")
        conditions = [c for c in doc.get("conditions", []) if c.get("node") not in nodes]
        conditions += [{"kind": "step", "node": n, "load": [[0.0, value]]} for n in nodes]
        doc["conditions"] = conditions
    elif axis == "arrival_rate":
        doc.setdefault("arrivals", {})["rate_per_s"] = value
    elif axis == "benchmark_period":
        for policy in doc.get("policies", []):
            if policy.get("kind") == "periodic":
                policy["period_s"] = value
    elif axis == "refresh":
        if value not in REFRESH_MODES:
            raise SweepError(f"axes.refresh: {value!r} is not one of {', '.join(REFRESH_MODES)}")
        refreshing = [p for p in doc.get("policies", []) if p.get("kind") in ("periodic", "adaptive")]
        if not refreshing:
            raise SweepError("axes.refresh: the base file has no periodic or adaptive policy to refresh")
        for policy in refreshing:
            if not (value == "none" and policy.get("kind") == "periodic"):
                policy["refresh"] = value
    elif axis == "input_size":
        doc["input_bytes"] = value
    elif axis == "model":
        doc["model"] = value
    elif axis == "policy":
        named = [p for p in doc.get("policies", []) if (p.get("name") or p.get("kind")) == value]
        doc["policies"] = named or [_policy_from_name(value)]
    else:  # pragma: no cover - AXES and this function are kept in step by tests
        raise SweepError(f"axis {axis!r} cannot change a simulation")


def _policy_from_name(name: str) -> dict:
    if name in ("static-best", "best"):
        return {"kind": "static", "rank": 1, "name": name}
    return {"kind": name}

