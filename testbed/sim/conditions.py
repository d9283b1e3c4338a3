"""Condition traces: bandwidth of a link and background load of a node as piecewise-constant timelines.

A trace is a sequence of ``(time_s, value)`` changes; the value holds until the next change. Step and
CSV traces are lists checked up front (a negative bandwidth is refused before the run starts); a random
walk is drawn lazily from a seeded generator, so a run bounded by a request count needs no horizon.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from testbed.errors import TraceError
from testbed.sim.spec import ConditionSpec

__all__ = ["Trace", "build_trace", "check_value"]

MIN_BANDWIDTH_MBPS = 1e-3
MAX_LOAD = 0.99


def check_value(quantity: str, value: float, where: str) -> float:
    """Refuse values the model cannot run: bandwidth must be > 0, background load in [0, 0.99]."""
    if not math.isfinite(value):
        raise TraceError(f"{where}: {quantity} {value!r} is not a finite number")
    if quantity == "bandwidth_mbps" and value <= 0:
        raise TraceError(f"{where}: bandwidth {value:g} Mbit/s must be greater than 0")
    if quantity == "load" and not 0 <= value <= MAX_LOAD:
        hint = f"; for percent write '{value:g}%'" if 1 < value <= 100 else ""
        raise TraceError(f"{where}: background load {value:g} must be between 0 and {MAX_LOAD}: a bare number is "
                         f"a fraction of the node (0-1){hint}")
    return value


def _read_csv(spec: ConditionSpec) -> tuple[tuple[float, float], ...]:
    path = spec.path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TraceError(f"{spec.where}.path: trace file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"{spec.where}.path: cannot read {path}: {exc}") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise TraceError(f"{path}: empty trace")
    header = [c.strip() for c in rows[0]]
    value_col = next((c for c in (spec.quantity, "value") if c in header), None)
    if "time_s" not in header or value_col is None:
        raise TraceError(f"{path} line 1: expected columns time_s and {spec.quantity} (or value), got {header}")
    ti, vi = header.index("time_s"), header.index(value_col)
    points = []
    for line_no, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        try:
            points.append((float(row[ti]), float(row[vi])))
        except (ValueError, IndexError):
            raise TraceError(f"{path} line {line_no}: time_s and {value_col} must be numbers, got {row!r}") from None
    return tuple(points)


@dataclass(frozen=True)
class Trace:
    """A checked timeline for one link (both directions) or one node."""

    spec: ConditionSpec
    points: tuple[tuple[float, float], ...]  # empty for a random walk

    @property
    def target(self) -> str:
        return self.spec.target

    @property
    def quantity(self) -> str:
        return self.spec.quantity

    def changes(self, rng: np.random.Generator) -> Iterator[tuple[float, float]]:
        """Yield (time_s, value) in time order; a random walk never ends (the run stops reading it)."""
        if self.spec.kind != "random-walk":
            yield from self.points
            return
        s = self.spec
        lo = s.min if s.min is not None else (MIN_BANDWIDTH_MBPS if s.target == "link" else 0.0)
        hi = s.max if s.max is not None else (math.inf if s.target == "link" else MAX_LOAD)
        value, t = float(s.start), 0.0
        sigma = s.sigma_pct / 100
        while True:
            yield t, value
            pull = s.reversion
            for step in rng.standard_normal(256):
                t += s.step_s
                if s.target == "link":
                    # multiplicative (bandwidth stays positive), pulled back towards start in log space
                    value = value * math.exp(sigma * step + pull * math.log(s.start / value))
                else:
                    value = value + sigma * step + pull * (s.start - value)  # additive in load fraction
                value = min(max(value, lo), hi)
                yield t, value


def build_trace(spec: ConditionSpec) -> Trace:
    """Check a condition spec (values, time order) and load its CSV; raises TraceError naming the field."""
    where = spec.where
    if spec.kind == "random-walk":
        check_value(spec.quantity, float(spec.start), f"{where}.start")
        for label, bound in (("min", spec.min), ("max", spec.max)):
            if bound is not None:
                check_value(spec.quantity, bound, f"{where}.{label}")
        if spec.sigma_pct < 0:
            raise TraceError(f"{where}.sigma_pct: {spec.sigma_pct} must be >= 0")
        if not 0 <= spec.reversion <= 1:
            raise TraceError(f"{where}.reversion: {spec.reversion} must be between 0 and 1")
        return Trace(spec, ())
    points = _read_csv(spec) if spec.kind == "csv" else spec.points
    if not points:
        raise TraceError(f"{where}: the trace has no points")
    last = -math.inf
    for i, (t, v) in enumerate(points):
        label = f"{where}" + (f" row {i + 1}" if spec.kind == "csv" else f".{spec.quantity}[{i}]")
        if not math.isfinite(t) or t < 0:
            raise TraceError(f"{label}: time {t!r} s must be >= 0")
        if t < last:
            raise TraceError(f"{label}: time {t:g} s comes before the previous point ({last:g} s); sort the trace")
        last = t
        check_value(spec.quantity, v, label)
    return Trace(spec, tuple(points))


def read_arrival_trace(path, devices: list[str]) -> dict[str, list[float]]:
    """Arrival times per device from a CSV with column time_s and, optionally, device.

    Rows without a device column go to every listed device (the same times for each).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TraceError(f"arrivals.path: trace file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"arrivals.path: cannot read {path}: {exc}") from None
    rows = list(csv.reader(text.splitlines()))
    header = [c.strip() for c in rows[0]] if rows else []
    if "time_s" not in header:
        raise TraceError(f"{path} line 1: expected a time_s column (and optionally device), got {header}")
    ti = header.index("time_s")
    di = header.index("device") if "device" in header else None
    out: dict[str, list[float]] = {d: [] for d in devices}
    for line_no, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        try:
            t = float(row[ti])
        except (ValueError, IndexError):
            raise TraceError(f"{path} line {line_no}: time_s {row!r} is not a number") from None
        if not math.isfinite(t) or t < 0:
            raise TraceError(f"{path} line {line_no}: time {t!r} s must be >= 0")
        targets = devices if di is None else [row[di].strip()]
        for d in targets:
            if d not in out:
                raise TraceError(f"{path} line {line_no}: device {d!r} is not one of {', '.join(devices)}")
            out[d].append(t)
    for d, ts in out.items():
        if any(b < a for a, b in zip(ts, ts[1:], strict=False)):
            raise TraceError(f"{path}: arrival times of device {d} are not sorted")
    return out
