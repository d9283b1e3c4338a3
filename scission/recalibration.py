"""Rescaling a profile from a few whole passes measured now (``scission recalibrate``): the pure part.

A full benchmark costs R whole passes and more; when a node's conditions change (a new CPU limit,
background load) its profile can be brought up to date from one or a few passes instead: the ratio of
the pass measured now to the profile's whole-model median rescales every block (one factor per
resource). Per kind of block (convolutions, dense layers, the rest, which is memory-bound) needs the
blocks timed apart (under tf-function by clock readings inside one compiled call, as the benchmark times
them); ``benchmarks/results/recalibration.md`` measured which of the two tracks a full re-benchmark
better: per kind there, one factor in runtimes without an in-graph clock. No TensorFlow here: the
passes are run by ``scission.benchmark.recalibrate``.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from scission.errors import ProfileError
from scission.profiles import Block, LatencyStats, ModelProfile, Profile, profile_dir, read_profile
from scission.runtimes import EAGER

CONV, DENSE, MEMORY = "conv", "dense", "memory"
KINDS = (CONV, DENSE, MEMORY)
# Keras layer classes whose work is dense arithmetic; a block holding none of them moves memory.
CONV_LAYERS = frozenset({"Conv1D", "Conv2D", "Conv3D", "SeparableConv1D", "SeparableConv2D", "DepthwiseConv1D",
                         "DepthwiseConv2D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"})
DENSE_LAYERS = frozenset({"Dense", "EinsumDense", "MultiHeadAttention"})
RECALIBRATED_DIR = "recalibrated"


def block_kind(layer_types: Iterable[str]) -> str:
    """conv when a block convolves, else dense when it multiplies matrices, else memory (BN, pooling, adds...)."""
    types = set(layer_types)
    if types & CONV_LAYERS:
        return CONV
    if types & DENSE_LAYERS:
        return DENSE
    return MEMORY


def load_source(profile_path: str | Path, model: str) -> tuple[Profile, ModelProfile]:
    """The profile folder and its model ``model``.

    Raises:
        ProfileError: no such folder, not a profile, or no model of that name (a profile of another model).
    """
    folder = Path(profile_path)
    if not folder.exists():
        raise ProfileError(f"profile folder {folder} does not exist")
    if not folder.is_dir():
        raise ProfileError(f"{folder} is not a profile folder (<tier>-<name>.scission)")
    profile = read_profile(folder)
    if model not in profile.models:
        known = ", ".join(sorted(profile.models)) or "no model"
        raise ProfileError(f"profile {folder} has no model {model!r} (it profiles {known}); "
                           "recalibrate a profile of that model")
    return profile, profile.models[model]


def target_dir(source: Profile, out: str | Path | None) -> Path:
    """Where the new profile goes: ``OUT/<tier>-<name>.scission``, by default next to the source under
    ``recalibrated/``. Never the source itself.

    Raises:
        ProfileError: the target is the source folder (a profile is never overwritten in place).
    """
    assert source.source is not None
    src = Path(source.source)
    parent = Path(out) if out is not None else src.parent / RECALIBRATED_DIR
    target = profile_dir(parent, source.resource)
    if target.resolve() == src.resolve() or Path(parent).resolve() == src.resolve():
        raise ProfileError(f"--out {parent} would overwrite the source profile {src}; "
                           "a profile is never recalibrated in place, give another folder")
    return target


def _scaled(stats: LatencyStats, factor: float) -> LatencyStats:
    def s(value: float | None) -> float | None:
        return None if value is None else value * factor

    return LatencyStats(mean_s=stats.mean_s * factor, median_s=s(stats.median_s), p95_s=s(stats.p95_s),
                        std_s=s(stats.std_s), count=stats.count,
                        samples_s=tuple(v * factor for v in stats.samples_s))


@dataclass(frozen=True)
class Recalibration:
    """What the passes measured, ready to rescale a model's profile.

    ``pass_s``: whole passes now (one compiled callable in ``runtime``). ``block_pass_s`` (per-kind mode):
    one chained pass, each block its own callable, seconds per block. ``cost_s``: wall minus build (the
    model, its split analysis and input: what a node serving the model already holds, ``prepare_s`` of it)
    and compile (which a live re-partition pays anyway).
    """

    runtime: str
    pass_s: tuple[float, ...]
    cost_s: float
    compile_s: float
    build_s: float
    wall_s: float
    prepare_s: float = 0.0
    kinds: tuple[str, ...] = ()
    block_pass_s: tuple[float, ...] = ()
    passes: int = 0  # timed passes (whole, or of the blocks apart)
    passes: int = 0  # timed passes (whole, or of the blocks apart)
    block_calls: bool = True  # each block was its own call (one call overhead each), not clocked inside one call
    note: str | None = None

    @property
    def median_s(self) -> float:
        return statistics.median(self.pass_s) if self.pass_s else sum(self.block_pass_s)


def whole_factor(model: ModelProfile, median_now_s: float, runtime: str | None = None) -> float:
    """Now over then, for the whole model: the profile's whole-model median, else Σ block latencies.

    An eager profile timed its blocks in chained passes (``chained_pass_median_s``), which is what an eager
    pass runs now (Keras's per-node steps, not ``model(x)``): the like-for-like figure when there is one.
    """
    then = model.run.get("whole_model_median_s")
    chained = model.run.get("chained_pass_median_s")
    if runtime == EAGER and model.runtime == EAGER and isinstance(chained, int | float) and chained > 0:
        then = chained
    if not isinstance(then, int | float) or then <= 0:
        then = sum(model.latencies_s) + model.call_overhead_s
    if then <= 0 or median_now_s <= 0:
        raise ProfileError(f"model {model.model}: cannot rescale a profile whose whole pass takes {then} s")
    return median_now_s / then


def kind_factors(model: ModelProfile, kinds: Sequence[str], block_now_s: Sequence[float],
                 block_calls: bool = True) -> dict[str, float]:
    """Per kind: Σ block times now over Σ profiled block latencies of its blocks.

    A block timed now as its own callable carries one call overhead, of which the profile's latencies are
    net (``block_calls``); clock readings inside one compiled call are net of it already.
    """
    overhead = model.call_overhead_s if block_calls else 0.0
    if not (len(kinds) == len(block_now_s) == len(model.blocks)):
        raise ProfileError(f"model {model.model}: {len(model.blocks)} blocks in the profile, "
                           f"{len(block_now_s)} timed now: the model built here is not the one profiled")
    now: dict[str, float] = {}
    then: dict[str, float] = {}
    for kind, block, t in zip(kinds, model.blocks, block_now_s, strict=True):
        now[kind] = now.get(kind, 0.0) + t
        then[kind] = then.get(kind, 0.0) + block.latency.typical_s + overhead
    return {k: now[k] / then[k] for k in now if then[k] > 0}


def rescale(model: ModelProfile, source: Path, measured: Recalibration, per_kind: bool,
            passes: int) -> ModelProfile:
    """A new ModelProfile with every block rescaled, recording where it came from (``recalibrated_from``)."""
    run = dict(model.run)
    provenance: dict[str, Any] = {
        "profile": str(source), "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "passes": passes,
        "cost_s": measured.cost_s, "runtime": measured.runtime, "compile_s": measured.compile_s,
        "build_s": measured.build_s, "prepare_s": measured.prepare_s, "wall_s": measured.wall_s, "pass_s": list(measured.pass_s),
        "from_runtime": model.runtime, "source_whole_model_median_s": run.get("whole_model_median_s"),
    }
    if per_kind:
        factors = kind_factors(model, measured.kinds, measured.block_pass_s, measured.block_calls)
        total_now = sum(measured.block_pass_s)
        calls = len(model.blocks) if measured.block_calls else 0
        overall = total_now / (sum(model.latencies_s) + calls * model.call_overhead_s)
        per_block = [factors[k] for k in measured.kinds]
        provenance["factors"] = factors
        provenance["kinds"] = list(measured.kinds)
        provenance["block_pass_s"] = list(measured.block_pass_s)
        provenance["block_timing"] = "one call per block" if measured.block_calls else "clocks inside one call"
        whole_now = measured.median_s if measured.pass_s else None
    else:
        overall = whole_factor(model, measured.median_s, measured.runtime)
        per_block = [overall] * len(model.blocks)
        provenance["factor"] = overall
        whole_now = measured.median_s
    reference = whole_now or sum(model.latencies_s) * overall
    provenance["cost_passes"] = measured.cost_s / reference if reference > 0 else None
    if measured.note:
        provenance["note"] = measured.note
    blocks: list[Block] = [replace(b, latency=_scaled(b.latency, f)) for b, f in zip(model.blocks, per_block,
                                                                                      strict=True)]
    run["runtime"] = measured.runtime
    if "call_overhead_s" in run and isinstance(run["call_overhead_s"], int | float):
        run["call_overhead_s"] = run["call_overhead_s"] * overall
    if whole_now is not None:
        run["whole_model_median_s"] = whole_now
        run["whole_model_samples_s"] = list(measured.pass_s)
    elif isinstance(run.get("whole_model_median_s"), int | float):
        run["whole_model_median_s"] = run["whole_model_median_s"] * overall
        run["whole_model_samples_s"] = [s * overall for s in run.get("whole_model_samples_s") or []]
    block_sum = sum(b.latency.median_s or b.latency.mean_s for b in blocks)
    run["block_sum_s"] = block_sum
    if run.get("whole_model_median_s"):
        run["block_sum_ratio"] = block_sum / run["whole_model_median_s"]
    run["date"] = provenance["date"]
    run["recalibrated_from"] = provenance
    return replace(model, blocks=tuple(blocks), run=run)


def metadata_now(source: Profile, host: Mapping[str, Any]) -> dict[str, Any]:
    """The new profile describes this machine now: today's host facts, and which profile it rescaled."""
    return {**source.metadata, **host, "recalibrated_from": str(source.source)}
