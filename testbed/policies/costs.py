"""What keeping a deployment current costs on a node, read from its profile's run facts (pure).

Three prices, each in full-speed seconds of node work (the unit of ``Benchmark.work_s``), shared by every
planner so that the simulator and a live controller charge alike:

- a **re-benchmark**: the profile's benchmark wall time, ``run["wall_s"]``;
- a **recalibration** (``scission recalibrate``: a few whole passes, then a rescale): the cost measured
  when the profile was recalibrated, ``run["recalibrated_from"]["cost_s"]``; without one, an *estimate*
  of ``RECALIBRATION_PASSES`` x the whole-model median in the profile's runtime (``whole_model_median_s``;
  for a profile without it, the sum of its block times plus one call overhead);
- a **switch** to blocks first..last: compiling that range, about ``sum(run["blocks_compile_s"][first:last+1])``;
  with no per-block list, ``run["compile_s"]`` (the whole model's) scaled by the share of blocks; 0 for an
  eager profile (nothing to compile) or one that recorded neither (version-1 and legacy profiles).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "RECALIBRATION_PASSES",
    "Price",
    "benchmark_price",
    "compile_price",
    "recalibration_price",
]

# The target is <= 1.5 whole passes per recalibration; two passes errs on the expensive side.
RECALIBRATION_PASSES = 2


@dataclass(frozen=True)
class Price:
    """Seconds of node work and where the figure came from (``measured`` False: an estimate)."""

    work_s: float
    measured: bool
    source: str


def _positive(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0 else None


def benchmark_price(run: Mapping[str, Any]) -> Price | None:
    """The measured benchmark wall time; None when the profile has none."""
    wall = _positive(run.get("wall_s"))
    return None if wall is None else Price(wall, True, "run['wall_s']")


def recalibration_price(run: Mapping[str, Any], block_latencies_s: Sequence[float],
                        call_overhead_s: float = 0.0) -> Price:
    """The measured recalibration cost when the profile records one, else the stated estimate."""
    origin = run.get("recalibrated_from")
    if isinstance(origin, Mapping):
        cost = _positive(origin.get("cost_s"))
        if cost is not None:
            return Price(cost, True, "run['recalibrated_from']['cost_s']")
    whole = _positive(run.get("whole_model_median_s"))
    if whole is not None and whole > 0:
        return Price(RECALIBRATION_PASSES * whole, False,
                     f"estimate: {RECALIBRATION_PASSES} passes x run['whole_model_median_s']")
    whole = sum(block_latencies_s) + call_overhead_s
    return Price(RECALIBRATION_PASSES * whole, False,
                 f"estimate: {RECALIBRATION_PASSES} passes x (sum of block times + call overhead)")


def compile_price(run: Mapping[str, Any], block_count: int, first_block: int, last_block: int) -> float:
    """Seconds to compile blocks first..last (inclusive) as one callable in the profile's runtime."""
    if str(run.get("runtime") or "eager") == "eager" or last_block < first_block:
        return 0.0
    per_block = run.get("blocks_compile_s")
    if isinstance(per_block, Sequence) and not isinstance(per_block, str) and len(per_block) == block_count:
        return float(sum(_positive(v) or 0.0 for v in per_block[first_block:last_block + 1]))
    whole = _positive(run.get("compile_s"))
    if whole is None or block_count <= 0:
        return 0.0
    return whole * (last_block - first_block + 1) / block_count
