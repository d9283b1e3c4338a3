"""Render configurations as the original tool's text lines and as JSON-ready dicts."""

from __future__ import annotations

from typing import Any

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


def as_dict(rank: int, config: Configuration) -> dict[str, Any]:
    return {
        "rank": rank,
        "latency_s": config.latency_s,
        "compute_s": config.compute_s,
        "transfer_s": config.transfer_s,
        "transfer_bytes": config.transfer_bytes,
        "tiers": [
            {
                "tier": p.tier,
                "resource": p.resource,
                "first_layer": p.first_layer,
                "last_layer": p.last_layer,
                "first_block": p.first_block,
                "last_block": p.last_block,
                "compute_s": p.compute_s,
                "sent_bytes": p.sent_bytes,
            }
            for p in config.placements
        ],
    }
