"""Read the original Scission tool's files without trusting them.

A ``<tier>-<name>.dat`` file is a pickle of ``{model: [LayerBenchmark, ...]}``. Pickles can run
arbitrary code, so the unpickler resolves exactly one global — ``__main__.LayerBenchmark``, mapped to a
plain record class here — and refuses every other global before anything is constructed. Builtin
containers and scalars need no globals. Protocols 0-5 parse; anything else is a clear error.
"""

from __future__ import annotations

import io
import math
import pickle
from pathlib import Path
from typing import Any

from scission.errors import LegacyFormatError
from scission.profiles import Block, LatencyStats, ModelProfile, Profile, Resource

LEGACY_FORMAT = "scission-legacy-dat"
_FIELDS = ("input_layer", "output_layer", "second_prediction", "output_size")


class LayerBenchmark:
    """Stand-in for the original tool's record; it only ever receives a __dict__ from the pickle."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise LegacyFormatError("a LayerBenchmark record's state is not a dict")
        self.__dict__.update(state)


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if name == "LayerBenchmark" and module in ("__main__", "scission_benchmark", "scission_predict"):
            return LayerBenchmark
        raise LegacyFormatError(
            f"refusing to load global {module}.{name}: a legacy .dat holds only LayerBenchmark records"
        )


def _parse_name(path: Path) -> Resource:
    stem = path.name[: -len(".dat")] if path.name.endswith(".dat") else path.name
    tier, sep, name = stem.partition("-")
    if not sep or not tier or not name:
        raise LegacyFormatError(f"{path.name}: legacy file names are <tier>-<name>.dat")
    return Resource(tier.lower(), name)


def _number(record: LayerBenchmark, field: str, path: Path, model: str, position: int) -> float:
    value = getattr(record, field, None)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise LegacyFormatError(f"{path.name}: {model} record {position} has {field}={value!r}; expected a number >= 0")
    return value


def read_legacy_dat(path: str | Path) -> Profile:
    """Load a legacy pickle into a Profile; never executes code from the file."""
    path = Path(path)
    resource = _parse_name(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LegacyFormatError(f"cannot read {path}: {exc}") from None
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data)).load()
    except LegacyFormatError as exc:
        raise LegacyFormatError(f"{path.name}: {exc}") from None
    except Exception as exc:  # a truncated or non-pickle file raises many different types
        raise LegacyFormatError(f"{path.name} is not a legacy Scission benchmark file ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict) or not obj:
        raise LegacyFormatError(f"{path.name}: expected a non-empty dict of model -> records, got {type(obj).__name__}")
    models: dict[str, ModelProfile] = {}
    for model, records in obj.items():
        if not isinstance(model, str) or not isinstance(records, list) or not records:
            raise LegacyFormatError(f"{path.name}: entry {model!r} is not a model name with a list of records")
        blocks = []
        for position, record in enumerate(records):
            if not isinstance(record, LayerBenchmark):
                raise LegacyFormatError(f"{path.name}: {model} record {position} is a {type(record).__name__}")
            first, last, mean_s, size = (_number(record, f, path, model, position) for f in _FIELDS)
            blocks.append(
                Block(
                    index=position,
                    first_layer=int(first),
                    last_layer=int(last),
                    output_bytes=int(size),
                    output_npy_bytes=int(size),
                    latency=LatencyStats(mean_s=float(mean_s)),
                )
            )
        models[model.lower()] = ModelProfile(model=model.lower(), blocks=tuple(blocks))
    return Profile(
        resource=resource,
        models=models,
        metadata={"source": "legacy Scission benchmark file", "file": path.name},
        source=path,
        source_format=LEGACY_FORMAT,
    )
