"""The one unit grammar: every quantity in every file and flag is parsed here, so a spelling has one meaning.

A quantity is a number followed by a unit (``20Mbit/s``, ``0.15MB``, ``30ms``, ``1%``). Spellings are
case-sensitive where case decides the meaning (``Mb`` a megabit, ``MB`` a megabyte, ``MiB`` 2^20 bytes);
any other capitalisation is read only when every accepted spelling it could stand for means the same
(``mbit`` is ``Mbit``, ``MS`` is ``ms``), and refused when they differ (``mbps``: tc reads megabytes per
second, most people megabits). Decimal prefixes are decimal everywhere (``MB`` = 10^6 bytes, in topology
files as in sweeps); binary sizes are spelled ``KiB``/``MiB``/``GiB``, or with Docker's one-letter
shorthand ``k``/``m``/``g`` (``512m`` = 512 MiB, as ``docker run --memory`` reads it).

A bare number is read only where the caller names its unit (``bare=``): a field whose name carries the
unit (``bandwidth_mbps: 10``, ``rtt_ms: 20``) or a fraction field (``background_load: 0.6``).
The table in docs/experiments.md ("Units") is this module's tables written out; keep them in step.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from scission.units import BITS_PER_BYTE as _B

__all__ = [
    "DIMENSIONS",
    "Dimension",
    "QuantityError",
    "format_quantity",
    "parse_duration_ms",
    "parse_duration_s",
    "parse_fraction",
    "parse_percent",
    "parse_quantity",
    "parse_rate_mbps",
    "parse_request_rate_per_s",
    "parse_size_bytes",
]


class QuantityError(ValueError):
    """A quantity that does not parse; the message is one line naming the accepted spellings."""


@dataclass(frozen=True)
class Dimension:
    """A kind of quantity: its canonical unit (what parse returns) and every spelling, as a factor to it."""

    name: str
    canonical: str
    units: dict[str, float]
    shown: tuple[str, ...]  # the spellings an error message lists (the rest are aliases)
    example: str
    refused: dict[str, str] | None = None  # lower-cased spelling -> why it is refused in any capitalisation

    def accepted(self) -> str:
        return "; ".join(self.shown)


_M = 1e6  # bits per Mbit
_RATE_MBPS: dict[str, float] = {
    # bits per second (tc's kbit/mbit/gbit are bits per second too)
    "bit/s": 1e-6, "b/s": 1e-6, "bps": 1e-6,
    "kbit/s": 1e-3, "Kb/s": 1e-3, "Kbps": 1e-3, "kbit": 1e-3,
    "Mbit/s": 1.0, "Mb/s": 1.0, "Mbps": 1.0, "Mbit": 1.0,
    "Gbit/s": 1e3, "Gb/s": 1e3, "Gbps": 1e3, "Gbit": 1e3,
    # bytes per second: decimal prefixes, then binary
    "B/s": _B / _M, "Bps": _B / _M,
    "kB/s": _B * 1e3 / _M, "KB/s": _B * 1e3 / _M, "kBps": _B * 1e3 / _M, "KBps": _B * 1e3 / _M,
    "MB/s": float(_B), "MBps": float(_B),
    "GB/s": _B * 1e3, "GBps": _B * 1e3,
    "KiB/s": _B * 2**10 / _M, "MiB/s": _B * 2**20 / _M, "GiB/s": _B * 2**30 / _M,
}
_SIZE_BYTES: dict[str, float] = {
    "B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
    "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
    "k": 2**10, "m": 2**20, "g": 2**30,  # Docker's shorthand (binary), as `docker run --memory 512m`
    "bit": 1 / 8, "kbit": 1e3 / 8, "Mbit": 1e6 / 8, "Gbit": 1e9 / 8,
}
# 'mb' was a megabyte in sweeps and a mebibyte in topology files, and is a megabit by convention.
_SIZE_REFUSED = {u: "bits or bytes? write B/kB/MB/GB for bytes (or KiB/MiB/GiB), bit/kbit/Mbit for bits"
                 for u in ("b", "kb", "mb", "gb")}
_DURATION_MS: dict[str, float] = {"us": 1e-3, "µs": 1e-3, "μs": 1e-3, "ms": 1.0, "s": 1e3, "min": 6e4, "h": 3.6e6}
_DURATION_S: dict[str, float] = {"us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}

DIMENSIONS: dict[str, Dimension] = {
    d.name: d
    for d in (
        Dimension("rate", "Mbit/s", _RATE_MBPS,
                  ("kbit/s, Mbit/s, Gbit/s (or kbit, mbit, Mbps: bits per second)",
                   "kB/s, MB/s, MBps, KiB/s, MiB/s (bytes per second)"), "20Mbit/s"),
        Dimension("size", "bytes", _SIZE_BYTES,
                  ("B, kB, MB, GB (powers of 10)", "KiB, MiB, GiB (powers of 2)",
                   "k, m, g (Docker's: KiB, MiB, GiB)"), "0.15MB", _SIZE_REFUSED),
        Dimension("duration", "ms", _DURATION_MS, ("us", "ms", "s", "min"), "20ms"),
        Dimension("duration in s", "s", _DURATION_S, ("us", "ms", "s", "min"), "30s"),
        Dimension("percent", "%", {"%": 1.0}, ("%",), "1%"),
        Dimension("request rate", "/s", {"/s": 1.0, "rps": 1.0, "/min": 1 / 60}, ("/s", "rps", "/min"), "5/s"),
    )
}

_QUANTITY_RE = re.compile(r"\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)?\s*(\S*)\s*")


def _factor(dim: Dimension, unit: str) -> float:
    """The factor of a spelling: exact case first, else any capitalisation that means one thing only."""
    if unit in dim.units:
        return dim.units[unit]
    if dim.refused and unit.lower() in dim.refused:
        raise QuantityError(f"unit {unit!r} is ambiguous ({dim.refused[unit.lower()]})")
    same = {u: f for u, f in dim.units.items() if u.lower() == unit.lower()}
    if same and len(set(same.values())) == 1:
        return next(iter(same.values()))
    if same:
        meanings = " or ".join(f"{u} ({_describe(dim, u)})" for u in sorted(same))
        raise QuantityError(f"unit {unit!r} is ambiguous: it could be {meanings}; use {dim.accepted()}")
    other = next((d.name for d in DIMENSIONS.values() if d is not dim and unit in d.units), None)
    if other is not None:
        raise QuantityError(f"unit {unit!r} is wrong for a {dim.name} (it is a {other}); use {dim.accepted()}")
    raise QuantityError(f"unknown unit {unit!r} for a {dim.name}; use {dim.accepted()}")


def _describe(dim: Dimension, unit: str) -> str:
    if dim.name == "rate":
        return "bytes per second" if "B" in unit else "bits per second"
    return f"{dim.units[unit]:g} {dim.canonical}"


def parse_quantity(value: Any, dimension: str, bare: str | None = None, allow_bare_zero: bool = False) -> float:
    """``value`` (a string with a unit, or a bare number where ``bare`` names its unit) in the canonical unit.

    ``allow_bare_zero``: a bare 0 is read without a unit (no loss, no jitter: nothing to get wrong).
    """
    dim = DIMENSIONS[dimension]
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise QuantityError(f"{value!r} is not a {dim.name}; write e.g. {dim.example!r}")
    if isinstance(value, str):
        match = _QUANTITY_RE.fullmatch(value)
        if match is not None and match.group(1) is None and match.group(2):
            _factor(dim, match.group(2))  # 'fast', 'parsecs': name the unknown unit
        if match is None or match.group(1) is None:
            raise QuantityError(f"{value!r} is not a {dim.name}: write a number and a unit, e.g. {dim.example!r}")
        number, unit = float(match.group(1)), match.group(2)
    else:
        number, unit = float(value), ""
    if not math.isfinite(number):
        raise QuantityError(f"{value!r} is not a finite number")
    if not unit:
        if allow_bare_zero and number == 0:
            return 0.0
        if bare is None:
            raise QuantityError(f"{str(value)!r} has no unit; use {dim.accepted()} (e.g. {dim.example!r})")
        unit = bare
    return number * _factor(dim, unit)


def format_quantity(amount: float, dimension: str, unit: str) -> str:
    """``amount`` (in the canonical unit) written in ``unit`` so that parse_quantity reads it back."""
    dim = DIMENSIONS[dimension]
    factor = _factor(dim, unit)
    return f"{amount / factor!r}{unit}" if factor != 1 else f"{amount!r}{unit}"


def _at_least(value: float, raw: Any, minimum: float, strict: bool) -> float:
    if strict and value <= minimum:
        raise QuantityError(f"{raw!r} must be greater than zero")
    if value < minimum:
        raise QuantityError(f"{raw!r} must not be negative" if minimum == 0 else f"{raw!r} must be at least {minimum:g}")
    return value


def parse_rate_mbps(value: Any, bare: str | None = None, positive: bool = True) -> float:
    """A data rate in Mbit/s: '20Mbit/s' -> 20, '500kbit' -> 0.5, '1MB/s' -> 8 (bytes are 8 bits)."""
    return _at_least(parse_quantity(value, "rate", bare), value, 0.0, positive)


def parse_size_bytes(value: Any, bare: str | None = None, positive: bool = True) -> float:
    """A size in bytes: '0.15MB' -> 150000, '512MiB' -> 536870912, '512m' (Docker's) -> 536870912."""
    return _at_least(parse_quantity(value, "size", bare), value, 0.0, positive)


def parse_duration_ms(value: Any, bare: str | None = None, allow_bare_zero: bool = False) -> float:
    """A duration in ms: '30ms' -> 30, '0.1s' -> 100, '500us' -> 0.5; never negative."""
    return _at_least(parse_quantity(value, "duration", bare, allow_bare_zero), value, 0.0, False)


def parse_duration_s(value: Any, bare: str | None = None) -> float:
    """A duration in s: '30s' -> 30, '2min' -> 120, '500ms' -> 0.5; never negative."""
    return _at_least(parse_quantity(value, "duration in s", bare), value, 0.0, False)


def parse_request_rate_per_s(value: Any, bare: str | None = None) -> float:
    """Requests per second: '5/s' -> 5, '30/min' -> 0.5."""
    return _at_least(parse_quantity(value, "request rate", bare), value, 0.0, True)


def parse_percent(value: Any, bare_is_percent: bool = False) -> float:
    """A percentage (0-100): '1%' -> 1.0. A bare 0 is read (zero has no unit to get wrong); other bare numbers
    only where the field's name says percent (``loss_pct: 1``, ``bare_is_percent``)."""
    pct = parse_quantity(value, "percent", "%" if bare_is_percent else None, allow_bare_zero=True)
    if not 0 <= pct <= 100:
        raise QuantityError(f"{value!r} outside 0-100%")
    return pct


def parse_fraction(value: Any, maximum: float = 1.0) -> float:
    """A fraction (0-1): a bare number is the fraction itself, '60%' is 0.6.

    A bare number above 1 is refused with the hint that it was probably meant as a percentage.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise QuantityError(f"{value!r} is not a fraction; write e.g. 0.6 or '60%'")
    if isinstance(value, str) and value.strip().endswith("%"):
        fraction = parse_quantity(value, "percent") / 100
        if not 0 <= fraction <= maximum:
            raise QuantityError(f"{value!r} is outside 0-{maximum * 100:g}%")
        return fraction
    try:
        fraction = float(value)
    except ValueError:
        raise QuantityError(f"{value!r} is not a fraction; write e.g. 0.6 or '60%'") from None
    if not math.isfinite(fraction) or fraction < 0:
        raise QuantityError(f"{value!r} must be a fraction between 0 and {maximum:g}")
    if fraction > 1:
        raise QuantityError(f"{value!r}: a bare number is a fraction (0-1); for percent write '{value:g}%'"
                            if isinstance(value, int | float) else
                            f"{value!r}: a bare number is a fraction (0-1); for percent write '{value.strip()}%'")
    if fraction > maximum:
        raise QuantityError(f"{value!r} must be at most {maximum:g} (a fraction)")
    return fraction
