"""Profiles: per-block latency and output size of models on one resource, and their on-disk format.

On disk (format ``scission-profile``, version 1) a profile is a folder ``<tier>-<name>.scission/``:

- ``profile.json`` — ``{"format": "scission-profile", "version": 1, "tier", "name", "metadata": {...}}``
  with the resource's metadata (host, CPU model, framework versions, CPU/memory limits, date).
- ``<model>.parquet`` — one row per block, in execution order, columns given by ``BLOCK_COLUMNS``
  (layer range, output bytes, latency median/mean/p95/std/count and every timed sample as a list).
  The model's own facts (input bytes and shape, repeats, whole-model timings, fidelity) are JSON in the
  Parquet key-value metadata under ``scission``.

One Parquet file per model means a model is written atomically (temp file + ``os.replace``) and a
benchmark that dies mid-way leaves every finished model readable. Legacy ``.dat`` files are read by
``scission.legacy`` into the same types, so a folder may mix both.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scission.errors import ProfileError
from scission.files import atomic_write_bytes

FORMAT_NAME = "scission-profile"
FORMAT_VERSION = 2  # 2: the run records the runtime it was timed in and its per-call overhead
READABLE_VERSIONS = (1, 2)  # a version-1 profile was timed eagerly, with no per-call overhead apart
PROFILE_SUFFIX = ".scission"

BLOCK_COLUMNS = [
    "block",
    "first_layer",
    "last_layer",
    "output_bytes",
    "output_npy_bytes",
    "median_s",
    "mean_s",
    "p95_s",
    "std_s",
    "count",
    "samples_s",
    "layer_names",
    "param_count",
    "output_shape",
    "output_dtype",
]

_NAME_RE = re.compile(r"^[^/\\\x00]+$")


def _nan_to_none(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


@dataclass(frozen=True)
class LatencyStats:
    """Latency of one block in seconds; samples are kept when known (legacy files only have a mean)."""

    mean_s: float
    median_s: float | None = None
    p95_s: float | None = None
    std_s: float | None = None
    count: int | None = None
    samples_s: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        for name in ("mean_s", "median_s", "p95_s", "std_s"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ProfileError(f"latency {name}={value!r} must be a finite number >= 0")

    @classmethod
    def from_samples(cls, samples_s: Sequence[float]) -> LatencyStats:
        samples = tuple(float(s) for s in samples_s)
        if not samples:
            raise ProfileError("cannot summarise an empty list of latency samples")
        ordered = sorted(samples)
        # Nearest-rank p95: a real observed sample, stable for small R.
        p95 = ordered[min(len(ordered) - 1, max(0, math.ceil(0.95 * len(ordered)) - 1))]
        return cls(
            mean_s=statistics.fmean(samples),
            median_s=statistics.median(samples),
            p95_s=p95,
            std_s=statistics.pstdev(samples) if len(samples) > 1 else 0.0,
            count=len(samples),
            samples_s=samples,
        )

    @property
    def typical_s(self) -> float:
        """The figure the search adds up: the mean.

        Means add along a path (the mean of a sum is the sum of the means); medians do not. Under a CPU
        quota a throttling stall lands in a different block each pass, so every block's median misses it
        and their sum undershoots the whole pass (seen: 0.73x at 0.25 CPU). The original tool used means too.
        """
        return self.mean_s


@dataclass(frozen=True)
class Block:
    """A contiguous run of Keras layers that is cut before and after by a single tensor."""

    index: int
    first_layer: int
    last_layer: int
    output_bytes: int
    latency: LatencyStats
    output_npy_bytes: int | None = None
    layer_names: tuple[str, ...] = ()
    param_count: int | None = None
    output_shape: tuple[int | None, ...] | None = None
    output_dtype: str | None = None

    def __post_init__(self) -> None:
        if self.first_layer < 0 or self.last_layer < self.first_layer:
            raise ProfileError(f"block {self.index}: layer range {self.first_layer}-{self.last_layer} is invalid")
        if self.output_bytes < 0:
            raise ProfileError(f"block {self.index}: output_bytes {self.output_bytes} must be >= 0")


@dataclass(frozen=True)
class ModelProfile:
    """The blocks of one model on one resource, with the facts of the run that measured them."""

    model: str
    blocks: tuple[Block, ...]
    input_bytes: int | None = None
    input_shape: tuple[int | None, ...] | None = None
    run: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.blocks:
            raise ProfileError(f"model {self.model!r} has no blocks")
        for position, block in enumerate(self.blocks):
            if block.index != position:
                raise ProfileError(f"model {self.model!r}: block {block.index} is at position {position}")

    @property
    def latencies_s(self) -> list[float]:
        return [b.latency.typical_s for b in self.blocks]

    @property
    def runtime(self) -> str:
        """The runtime the blocks were timed in (``scission.runtimes``); older profiles were timed eagerly."""
        from scission.runtimes import LEGACY

        return str(self.run.get("runtime") or LEGACY)

    @property
    def call_overhead_s(self) -> float:
        """Cost of one call of a compiled callable, apart from its blocks' work: a tier running a block
        range pays it once (block latencies are net of it). 0 for profiles that did not measure it."""
        value = self.run.get("call_overhead_s")
        return float(value) if isinstance(value, int | float) and value > 0 else 0.0


@dataclass(frozen=True)
class Resource:
    """A machine that can run blocks: its tier (device, edge, cloud, ...) and its name."""

    tier: str
    name: str

    def __post_init__(self) -> None:
        if not self.tier or not _NAME_RE.match(self.tier) or "-" in self.tier:
            raise ProfileError(f"tier {self.tier!r} must be a non-empty name without '-' or '/'")
        if not self.name or not _NAME_RE.match(self.name):
            raise ProfileError(f"resource name {self.name!r} must be non-empty and contain no '/'")

    @property
    def label(self) -> str:
        return f"{self.tier}-{self.name}"


@dataclass(frozen=True)
class Profile:
    """Models measured on one resource."""

    resource: Resource
    models: dict[str, ModelProfile]
    metadata: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None
    source_format: str = FORMAT_NAME


# ----------------------------------------------------------------------------------------------- writing


def profile_dir(out_dir: str | Path, resource: Resource) -> Path:
    return Path(out_dir) / f"{resource.label}{PROFILE_SUFFIX}"


def _blocks_frame(model: ModelProfile):
    import pandas as pd

    rows = []
    for b in model.blocks:
        lat = b.latency
        rows.append(
            {
                "block": b.index,
                "first_layer": b.first_layer,
                "last_layer": b.last_layer,
                "output_bytes": b.output_bytes,
                "output_npy_bytes": b.output_npy_bytes,
                "median_s": lat.median_s,
                "mean_s": lat.mean_s,
                "p95_s": lat.p95_s,
                "std_s": lat.std_s,
                "count": lat.count,
                "samples_s": list(lat.samples_s),
                "layer_names": list(b.layer_names),
                "param_count": b.param_count,
                "output_shape": None if b.output_shape is None else [(-1 if d is None else d) for d in b.output_shape],
                "output_dtype": b.output_dtype,
            }
        )
    frame = pd.DataFrame(rows, columns=BLOCK_COLUMNS)
    for column in ("output_npy_bytes", "count", "param_count"):
        frame[column] = frame[column].astype("Int64")
    return frame


def write_model(out_dir: str | Path, resource: Resource, model: ModelProfile, metadata: dict[str, Any]) -> Path:
    """Write (or replace) one model of a resource's profile; each file lands atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = profile_dir(out_dir, resource)
    folder.mkdir(parents=True, exist_ok=True)
    header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "tier": resource.tier, "name": resource.name,
              "metadata": metadata}
    atomic_write_bytes(folder / "profile.json", (json.dumps(header, indent=2, sort_keys=True) + "\n").encode())

    table = pa.Table.from_pandas(_blocks_frame(model), preserve_index=False)
    model_meta = {
        "model": model.model,
        "input_bytes": model.input_bytes,
        "input_shape": None if model.input_shape is None else [(-1 if d is None else d) for d in model.input_shape],
        "run": model.run,
    }
    schema_meta = dict(table.schema.metadata or {})
    schema_meta[b"scission"] = json.dumps(model_meta, sort_keys=True).encode()
    table = table.replace_schema_metadata(schema_meta)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    target = folder / f"{model.model}.parquet"
    atomic_write_bytes(target, sink.getvalue().to_pybytes())
    return target


def write_profile(out_dir: str | Path, profile: Profile) -> Path:
    for model in profile.models.values():
        write_model(out_dir, profile.resource, model, profile.metadata)
    return profile_dir(out_dir, profile.resource)


# ----------------------------------------------------------------------------------------------- reading


def _shape(value: Any) -> tuple[int | None, ...] | None:
    if value is None:
        return None
    return tuple(None if int(d) < 0 else int(d) for d in value)


def _read_model(path: Path) -> ModelProfile:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        raise ProfileError(f"cannot read profile table {path}: {exc}") from None
    raw_meta = (table.schema.metadata or {}).get(b"scission")
    if raw_meta is None:
        raise ProfileError(f"{path} is not a scission profile table (no 'scission' metadata)")
    meta = json.loads(raw_meta)
    missing = [c for c in BLOCK_COLUMNS if c not in table.column_names]
    if missing:
        raise ProfileError(f"{path} lacks columns {missing}")
    blocks = []
    for row in table.to_pylist():
        latency = LatencyStats(
            mean_s=row["mean_s"],
            median_s=_nan_to_none(row["median_s"]),
            p95_s=_nan_to_none(row["p95_s"]),
            std_s=_nan_to_none(row["std_s"]),
            count=row["count"],
            samples_s=tuple(row["samples_s"] or ()),
        )
        blocks.append(
            Block(
                index=row["block"],
                first_layer=row["first_layer"],
                last_layer=row["last_layer"],
                output_bytes=row["output_bytes"],
                latency=latency,
                output_npy_bytes=row["output_npy_bytes"],
                layer_names=tuple(row["layer_names"] or ()),
                param_count=row["param_count"],
                output_shape=_shape(row["output_shape"]),
                output_dtype=row["output_dtype"],
            )
        )
    return ModelProfile(
        model=meta["model"],
        blocks=tuple(blocks),
        input_bytes=meta.get("input_bytes"),
        input_shape=_shape(meta.get("input_shape")),
        run=meta.get("run") or {},
    )


def read_profile(folder: str | Path) -> Profile:
    """Read one ``<tier>-<name>.scission`` folder."""
    folder = Path(folder)
    header_path = folder / "profile.json"
    try:
        header = json.loads(header_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfileError(f"{folder} is not a profile: it has no profile.json") from None
    except (OSError, ValueError) as exc:
        raise ProfileError(f"cannot read {header_path}: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ProfileError(f"{header_path} is not a {FORMAT_NAME} file")
    if header.get("version") not in READABLE_VERSIONS:
        raise ProfileError(
            f"{header_path} has format version {header.get('version')!r}; this scission reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    resource = Resource(str(header.get("tier", "")), str(header.get("name", "")))
    models = {}
    for path in sorted(folder.glob("*.parquet")):
        model = _read_model(path)
        models[model.model] = model
    return Profile(resource=resource, models=models, metadata=header.get("metadata") or {}, source=folder)
