"""Render configurations as the original tool's text lines and as JSON-ready dicts."""

from __future__ import annotations

from typing import Any

from scission.partition import InputSize
from scission.problem import Configuration


def tier_label(tier: str) -> str:
    return tier[:1].upper() + tier[1:]


def format_line(rank: int, config: Configuration) -> str:
    """`[1] 9.0106s - 2.4087MB - Device(raspi4) = 0 - 6, Edge(vm2Core) = 7 - 11, Cloud(...) = 12 - 25`."""
    parts = []
    for p in config.placements:
        parts.append(f"{tier_label(p.tier)}({p.resource}) = {p.first_layer} - {p.last_layer}")
    latency = format(round(config.latency_s, 4), ".4f")
    megabytes = format(round(config.transfer_bytes / 1_000_000, 4), ".4f")
    return f"[{rank}] {latency}s - {megabytes}MB - {', '.join(parts)}"


def as_dict(rank: int, config: Configuration, input_size: InputSize | None = None) -> dict[str, Any]:
    """One configuration for ``--json``: every field has one type (documented in docs/search.md).

    Seconds and bytes are floats, indices ints; a tier that runs nothing has ``first_layer``, ``last_layer``,
    ``first_block`` and ``last_block`` -1, ``compute_s`` and ``call_overhead_s`` 0.0, and ``resource`` null unless
    it is the device. A running tier's ``compute_s`` includes its ``call_overhead_s`` (paid once per tier).
    """
    out: dict[str, Any] = {
        "rank": int(rank),
        "config_id": config.id,
        "block_config_id": config.block_id,
        "latency_s": float(config.latency_s),
        "compute_s": float(config.compute_s),
        "transfer_s": float(config.transfer_s),
        "transfer_bytes": float(config.transfer_bytes),
    }
    if input_size is not None:
        out["input_bytes"] = float(input_size.size_bytes)
        out["input_source"] = input_size.source
    out["tiers"] = [
        {
            "tier": p.tier,
            "resource": p.resource,
            "first_layer": int(p.first_layer),
            "last_layer": int(p.last_layer),
            "first_block": int(p.first_block),
            "last_block": int(p.last_block),
            "compute_s": float(p.compute_s),
            "call_overhead_s": float(p.call_overhead_s),
            "sent_bytes": float(p.sent_bytes),
        }
        for p in config.placements
    ]
    return out
