"""Pieces every testbed input-file schema shares (simulation, experiment and sweep files).

The pydantic models are the specs themselves (frozen, extra keys refused), so each field is written once.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict

__all__ = ["Strict", "at_least", "positive"]


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
