"""The axes a sweep may vary: their units, result-column names, and how each changes a base file.

Values are parsed at the edge into one canonical unit per axis (the column name says which), so a
results table never mixes units. Each axis knows how to apply a value to a simulation document (a
dict, before validation) and, for emulated runs, to an experiment document; topology changes are
written to a derived topology file in the point's work folder.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from scission.files import atomic_write_text
from testbed.errors import SweepError

_NUM = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"

_UNITS: dict[str, dict[str, float]] = {
    "bandwidth": {"kbit": 1e-3, "mbit": 1.0, "gbit": 1e3, "kbps": 1e-3, "mbps": 1.0, "gbps": 1e3},
    "duration_ms": {"ms": 1.0, "s": 1e3, "us": 1e-3},
    "duration_s": {"s": 1.0, "ms": 1e-3, "min": 60.0},
    "size": {"b": 1.0, "kb": 1e3, "mb": 1e6, "gb": 1e9},
    "rate": {"/s": 1.0, "rps": 1.0, "/min": 1 / 60},
    "fraction": {"": 1.0, "%": 0.01},
}


@dataclass(frozen=True)
class AxisKind:
    name: str  # the axis as written in a sweep file
    column: str  # the results column (unit in the name)
    unit_kind: str | None  # key of _UNITS, or None for names
    default_unit: str | None  # unit assumed for bare numbers given with `unit:` only
    minimum: float = 0.0
    strictly_positive: bool = True


AXES: dict[str, AxisKind] = {
    a.name: a
    for a in [
        AxisKind("bandwidth", "bandwidth_mbps", "bandwidth", None),
        AxisKind("rtt", "rtt_ms", "duration_ms", None, strictly_positive=False),
        AxisKind("loss", "loss_pct", "fraction", None, strictly_positive=False),
        AxisKind("background_load", "background_load", "fraction", "", strictly_positive=False),
        AxisKind("arrival_rate", "arrival_rate_per_s", "rate", None),
        AxisKind("benchmark_period", "benchmark_period_s", "duration_s", None),
        AxisKind("input_size", "input_size_bytes", "size", None),
        AxisKind("model", "model", None, None),
        AxisKind("policy", "policy", None, None),
    ]
}


def parse_value(axis: AxisKind, raw: Any, unit: str | None, where: str) -> Any:
    """One axis value in the axis's canonical unit; a wrong or missing unit is a SweepError naming it."""
    if axis.unit_kind is None:
        if not isinstance(raw, str) or not raw.strip():
            raise SweepError(f"{where}: {raw!r} is not a {axis.name} name")
        return raw.strip()
    units = _UNITS[axis.unit_kind]
    if isinstance(raw, bool):
        raise SweepError(f"{where}: {raw!r} is not a number")
    if isinstance(raw, int | float):
        number, given = float(raw), (unit if unit is not None else axis.default_unit)
        if given is None:
            raise SweepError(f"{where}: {raw!r} has no unit; write it like {_example(axis)} or give `unit:`")
    else:
        match = re.fullmatch(r"\s*" + _NUM + r"\s*([a-zA-Z/%]*)\s*", str(raw))
        if not match:
            raise SweepError(f"{where}: {raw!r} is not a number with a unit, e.g. {_example(axis)}")
        number, given = float(match.group(1)), match.group(2) or (unit if unit is not None else axis.default_unit)
        if given is None:
            raise SweepError(f"{where}: {raw!r} has no unit; write it like {_example(axis)}")
    key = given.lower()
    if key not in units:
        raise SweepError(
            f"{where}: unit {given!r} is wrong for {axis.name}; use one of {', '.join(u or '(none)' for u in units)}"
        )
    value = number * units[key]
    if not math.isfinite(value) or value < axis.minimum or (axis.strictly_positive and value <= 0):
        bound = "greater than 0" if axis.strictly_positive else "at least 0"
        raise SweepError(f"{where}: {raw!r} must be {bound}")
    if axis.unit_kind == "fraction" and value > 1:
        raise SweepError(f"{where}: {raw!r} is more than 100%")
    return value


def _example(axis: AxisKind) -> str:
    return {
        "bandwidth": "'20mbit'",
        "duration_ms": "'20ms'",
        "duration_s": "'30s'",
        "size": "'0.15MB'",
        "rate": "'5/s'",
        "fraction": "'50%'",
    }[axis.unit_kind or ""]


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
        field, text = {"bandwidth": ("bandwidth", f"{value}mbit"), "rtt": ("rtt", f"{value}ms"),
                       "loss": ("loss", f"{value * 100}%")}[axis]
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

