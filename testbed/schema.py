"""Pieces every testbed input-file schema shares (simulation, experiment and sweep files).

The pydantic models are the specs themselves (frozen, extra keys refused), so each field is written once.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo

from scission import quantities

__all__ = ["Strict", "at_least", "named_quantity", "positive"]

# A field's name suffix names its unit: a bare number is in that unit, a string may use any unit of the
# same kind (`period_s: 2min`, `input_bytes: 0.15MB`); the one grammar is scission.quantities.
_SUFFIX_PARSERS = (
    ("_per_s", lambda v: quantities.parse_request_rate_per_s(v, bare="/s")),
    ("_mbps", lambda v: quantities.parse_rate_mbps(v, bare="Mbit/s")),
    ("_bytes", lambda v: quantities.parse_size_bytes(v, bare="B", positive=False)),
    ("_pct", lambda v: quantities.parse_percent(v, bare_is_percent=True)),
    ("_ms", lambda v: quantities.parse_duration_ms(v, bare="ms")),
    ("_s", lambda v: quantities.parse_duration_s(v, bare="s")),
)


def named_quantity(value: Any, info: ValidationInfo) -> Any:
    """A pydantic before-validator: parse ``value`` in the unit its field's name ends with (None passes).

    Bare numbers pass through untouched (so the loaded figure is exactly the one written); the field's own
    validator checks the range.
    """
    if value is None or isinstance(value, bool) or (isinstance(value, int | float) and math.isfinite(value)):
        return value
    for suffix, parse in _SUFFIX_PARSERS:
        if info.field_name.endswith(suffix):
            return parse(value)
    raise AssertionError(f"field {info.field_name} names no unit")  # pragma: no cover - a schema mistake


class Strict(BaseModel):
    """A file section: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def positive(value: float | None, strict: bool = True) -> float | None:
    """``value`` if it is finite and > 0 (>= 0 with strict=False); None passes."""
    if value is None:
        return value
    if not math.isfinite(value) or (value <= 0 if strict else value < 0):
        raise ValueError(f"{value!r} must be {'greater than 0' if strict else '>= 0'}")
    return value


def at_least(value: int | None, lowest: int) -> int | None:
    if value is not None and value < lowest:
        raise ValueError(f"{value!r} must be at least {lowest}")
    return value
