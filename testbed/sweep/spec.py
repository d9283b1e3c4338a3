"""Sweep files: a base (simulation or emulated experiment), axes with units, replications, grid or points.

```yaml
name: partition-vs-bandwidth
base: {simulation: sim-legacy.yaml}        # or {experiment: run-three-tier.yaml}
axes:
  bandwidth: {values: [1, 2, 5, 10, 20, 50], unit: mbit}   # or ["1mbit", "2mbit", ...]
  model: [vgg16, resnet50]
replications: 3                            # seeds first_seed .. first_seed+2 (or `seeds: [..]`)
points:                                    # optional: these points instead of the full grid
  - {bandwidth: 5mbit, model: vgg16}
```
Everything is checked before anything runs; each problem is one SweepError naming the field.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from scission.files import load_document, validation_message
from testbed.errors import SweepError, TestbedError
from testbed.schema import Strict
from testbed.sweep.axes import AXES, Target, parse_value
from testbed.sweep.emulated import EMULATED_AXES

BASE_KINDS = ("simulation", "experiment")


@dataclass(frozen=True)
class Axis:
    name: str
    column: str
    values: tuple[Any, ...]
    target: Target


@dataclass(frozen=True)
class Point:
    """One run: axis values (canonical units, by axis name) and a seed."""

    values: tuple[tuple[str, Any], ...]
    seed: int

    @property
    def key(self) -> str:
        text = json.dumps([list(self.values), self.seed], sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.values)


@dataclass(frozen=True)
class SweepSpec:
    name: str
    base_kind: str  # simulation | experiment
    base_path: Path
    axes: tuple[Axis, ...]
    seeds: tuple[int, ...]
    points: tuple[dict[str, Any], ...] | None  # None: full grid
    source: Path | None = None

    def expand(self) -> list[Point]:
        if self.points is None:
            combos = itertools.product(*(axis.values for axis in self.axes))
            rows = [tuple((a.name, v) for a, v in zip(self.axes, combo, strict=True)) for combo in combos]
        else:
            rows = [tuple((a.name, p[a.name]) for a in self.axes) for p in self.points]
        return [Point(row, seed) for row in rows for seed in self.seeds]


class _Axis(Strict):
    values: list[Any]
    unit: str | None = None
    links: list[list[str]] | None = None
    nodes: list[str] | None = None


class _Sweep(Strict):
    name: str = "sweep"
    base: dict[str, str]
    axes: dict[str, _Axis | list[Any]]
    replications: int = 1
    first_seed: int = 1
    seeds: list[int] | None = None
    points: list[dict[str, Any]] | None = None


def _check_base(kind: str, path: Path) -> None:
    """Load the base file once so a broken base is reported before any point runs."""
    try:
        if kind == "simulation":
            from testbed.sim.spec import load_simulation

            load_simulation(path)
        else:
            from testbed.run.spec import load_experiment

            load_experiment(path)
    except TestbedError as exc:
        raise SweepError(f"base.{kind}: {exc}") from None


def sweep_from_dict(data: Any, base_dir: Path, source: Path | None = None) -> SweepSpec:
    if not isinstance(data, dict):
        raise SweepError("a sweep file must be a mapping with base, axes and replications")
    try:
        m = _Sweep.model_validate(data)
    except ValidationError as exc:
        raise SweepError(validation_message(exc)) from None
    if len(m.base) != 1 or next(iter(m.base)) not in BASE_KINDS:
        raise SweepError(f"base: give exactly one of {' or '.join(BASE_KINDS)}: FILE, got {dict(m.base)}")
    base_kind, base_file = next(iter(m.base.items()))
    base_path = Path(base_file)
    if not base_path.is_absolute():
        base_path = base_dir / base_path
    if not base_path.is_file():
        raise SweepError(f"base.{base_kind}: {base_file} does not exist (looked for {base_path})")
    _check_base(base_kind, base_path)
    if not m.axes:
        raise SweepError("axes: give at least one axis")
    axes = []
    for name, raw in m.axes.items():
        if name not in AXES:
            raise SweepError(f"axes.{name}: unknown axis; known axes are {', '.join(AXES)}")
        spec = raw if isinstance(raw, _Axis) else _Axis(values=raw)
        if not spec.values:
            raise SweepError(f"axes.{name}: the axis has no values")
        kind = AXES[name]
        if base_kind == "experiment" and name not in EMULATED_AXES:
            raise SweepError(f"axes.{name}: an emulated experiment can vary {', '.join(EMULATED_AXES)} only")
        values = tuple(parse_value(kind, v, spec.unit, f"axes.{name}[{i}]") for i, v in enumerate(spec.values))
        if len(set(values)) != len(values):
            raise SweepError(f"axes.{name}: values repeat ({list(spec.values)})")
        target = Target(
            links=tuple((p[0], p[1]) for p in spec.links) if spec.links else None,
            nodes=tuple(spec.nodes) if spec.nodes else None,
        )
        if spec.links and any(len(p) != 2 for p in spec.links):
            raise SweepError(f"axes.{name}.links: each link is [a, b]")
        axes.append(Axis(name, kind.column, values, target))
    if m.replications < 1:
        raise SweepError(f"replications: {m.replications} must be at least 1")
    seeds = tuple(m.seeds) if m.seeds else tuple(range(m.first_seed, m.first_seed + m.replications))
    if len(set(seeds)) != len(seeds):
        raise SweepError(f"seeds: {list(seeds)} repeat a value")
    points = None
    if m.points is not None:
        if not m.points:
            raise SweepError("points: the list is empty; remove it to run the full grid")
        parsed = []
        for i, p in enumerate(m.points):
            unknown = set(p) - {a.name for a in axes}
            if unknown:
                raise SweepError(f"points[{i}]: {sorted(unknown)} are not axes of this sweep")
            row = {}
            for axis in axes:
                if axis.name not in p:
                    raise SweepError(f"points[{i}].{axis.name}: is missing")
                raw_unit = m.axes[axis.name].unit if isinstance(m.axes[axis.name], _Axis) else None
                row[axis.name] = parse_value(AXES[axis.name], p[axis.name], raw_unit, f"points[{i}].{axis.name}")
            parsed.append(row)
        points = tuple(parsed)
    return SweepSpec(m.name, base_kind, base_path, tuple(axes), seeds, points, source)


def load_sweep(path: str | Path) -> SweepSpec:
    path = Path(path)
    return load_document(path, SweepError, "sweep file", lambda data, folder: sweep_from_dict(data, folder, path))
