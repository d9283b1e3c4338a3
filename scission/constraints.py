"""Parse the original tool's constraint flags into TierConstraints.

Criteria are comma-separated items: ``N`` (layer N lies in the tier's range), ``!N`` (it does not),
``-1`` (the tier runs no block), ``!-1`` (it runs at least one), ``name`` (runs at least one block, on that
resource), ``!name`` (runs at least one block, not on that resource). ``name:X`` and ``!name:X`` always mean
the resource X, so that a resource named with digits (the original's ``edge-2500``) is not read as a layer.
"""

from __future__ import annotations

import math
import re

from scission.errors import ConstraintError
from scission.problem import TierConstraints

_NUMBER = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
MB = 1_000_000


def parse_criteria(text: str, tier: str) -> dict:
    """Criteria string -> keyword arguments of TierConstraints."""
    include_layers: list[int] = []
    exclude_layers: list[int] = []
    include_resources: list[str] = []
    exclude_resources: list[str] = []
    must_run: bool | None = None
    for raw in text.split(","):
        item = raw.strip()
        if not item or item == "!":
            raise ConstraintError(f"--{tier} criteria {text!r}: empty item; use N, !N, -1, !-1, name or !name")
        negated = item.startswith("!")
        body = item[1:].strip() if negated else item
        if body.startswith("name:"):
            name = body[len("name:"):].strip()
            if not name:
                raise ConstraintError(f"--{tier} criteria {text!r}: 'name:' needs a resource name, e.g. name:2500")
            (exclude_resources if negated else include_resources).append(name)
        elif body == "-1":
            wanted = negated  # '-1' runs nothing, '!-1' runs something
            if must_run is not None and must_run != wanted:
                raise ConstraintError(f"--{tier} criteria {text!r}: both -1 and !-1")
            must_run = wanted
        elif body.isdigit():
            (exclude_layers if negated else include_layers).append(int(body))
        elif body.startswith("-") and body[1:].isdigit():
            raise ConstraintError(f"--{tier} criteria {text!r}: layer {body} is negative; only -1 has a meaning")
        else:
            (exclude_resources if negated else include_resources).append(body)
    return {
        "include_layers": tuple(include_layers),
        "exclude_layers": tuple(exclude_layers),
        "must_run": must_run,
        "include_resources": tuple(include_resources),
        "exclude_resources": tuple(exclude_resources),
    }


_SIZE_UNITS = {"": MB, "mb": MB, "kb": 1_000, "b": 1, "gb": 1_000_000_000}
_TIME_UNITS = {"": 1.0, "s": 1.0, "ms": 1e-3}


def _split_unit(text: str) -> tuple[str, str]:
    match = re.match(r"^\s*([^a-zA-Z%]*)([a-zA-Z%]*)\s*$", text)
    if not match:
        return text, ""
    return match.group(1), match.group(2).lower()


def parse_megabytes(text: str, flag: str) -> float:
    """A size in MB (10^6 bytes) by default, or with a unit (B, kB, MB, GB) -> bytes."""
    number, unit = _split_unit(text)
    if unit not in _SIZE_UNITS:
        raise ConstraintError(f"{flag} {text!r}: unknown unit {unit!r}; use MB (the default), kB, B or GB")
    return _parse_number(number, flag, "MB") * _SIZE_UNITS[unit]


def parse_time_cap(text: str, flag: str) -> dict:
    """Seconds, or 'P%' of the configuration's total compute time."""
    number, unit = _split_unit(text)
    if unit == "%":
        pct = _parse_number(number, flag, "%")
        if pct > 100:
            raise ConstraintError(f"{flag} {text!r}: a percentage of the total compute time is at most 100%")
        return {"time_cap_pct": pct}
    if unit not in _TIME_UNITS:
        raise ConstraintError(f"{flag} {text!r}: unknown unit {unit!r}; use seconds (s, the default), ms or P%")
    return {"time_cap_s": _parse_number(number, flag, "s") * _TIME_UNITS[unit]}


def _parse_number(text: str, flag: str, unit: str) -> float:
    stripped = text.strip()
    if stripped.startswith("-"):
        raise ConstraintError(f"{flag} {text!r}: must not be negative")
    if not _NUMBER.match(stripped):
        raise ConstraintError(f"{flag} {text!r}: expected a number ({unit})")
    value = float(stripped)
    if not math.isfinite(value):
        raise ConstraintError(f"{flag} {text!r}: expected a finite number")
    return value


def build_constraints(
    criteria: dict[str, str | None],
    uploads_mb: dict[str, str | None],
    times: dict[str, str | None],
) -> dict[str, TierConstraints]:
    """Combine the per-tier flags of ``scission predict`` into constraints keyed by tier name."""
    out: dict[str, TierConstraints] = {}
    for tier in set(criteria) | set(uploads_mb) | set(times):
        kwargs: dict = {}
        if criteria.get(tier):
            kwargs.update(parse_criteria(criteria[tier], tier))
        if uploads_mb.get(tier) is not None:
            kwargs["upload_cap_bytes"] = parse_megabytes(uploads_mb[tier], f"--{tier}-upload")
        if times.get(tier) is not None:
            kwargs.update(parse_time_cap(times[tier], f"--{tier}-time"))
        if kwargs:
            out[tier] = TierConstraints(**kwargs)
    return out
