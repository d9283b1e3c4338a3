"""Unit constants: the one home of every conversion factor the three packages share.

Names carry their unit; a factor here has one meaning everywhere (decimal SI prefixes for rates:
1 Mbit/s = 10^6 bit/s). Written quantities ('20Mbit/s', '0.15MB') are parsed by scission.quantities.
"""

from __future__ import annotations

BITS_PER_BYTE = 8
BYTES_PER_S_PER_MBPS = 125_000  # 1 Mbit/s = 10^6 bit/s = 125,000 bytes/s


def mbps_to_bytes_per_s(bandwidth_mbps: float) -> float:
    return bandwidth_mbps * BYTES_PER_S_PER_MBPS


def bytes_per_s_to_mbps(rate_bytes_per_s: float) -> float:
    return rate_bytes_per_s / BYTES_PER_S_PER_MBPS
