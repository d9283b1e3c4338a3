"""Arrival streams: per device, the time of its first request and a source of the gaps after it.

Pure (numpy only): the engine turns these into wake-ups. Poisson gaps are exponential, fixed-rate devices
start at a random phase (so they are not in lock step), a closed loop draws think times, and a trace
replays its CSV times per device.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from testbed.errors import TestbedError
from testbed.sim.conditions import read_arrival_trace
from testbed.sim.streams import Buffer, Gaps, stream

__all__ = ["ArrivalStreams", "arrival_streams"]


@dataclass
class ArrivalStreams:
    """gaps[device].take() -> seconds to the next request (None: trace exhausted); first[device] in s."""

    gaps: dict[str, Buffer | Gaps] = field(default_factory=dict)
    first: dict[str, float] = field(default_factory=dict)
    trace_times: dict[str, list[float]] = field(default_factory=dict)

    def rates_per_s(self, arrivals, devices: list[str]) -> dict[str, float]:
        """Long-run request rate per device (for offered-load checks; closed loops have none)."""
        if arrivals.kind in ("poisson", "fixed"):
            return {d: arrivals.rate_per_s for d in devices}
        out = {}
        for d, times in self.trace_times.items():
            span = (times[-1] - times[0]) if len(times) > 1 else 0.0
            out[d] = (len(times) - 1) / span if span > 0 else 0.0
        return out


def arrival_streams(arrivals, devices: list[str], seed: int) -> ArrivalStreams:
    """The streams of one run; raises TestbedError when a trace has no arrival for any listed device."""
    out = ArrivalStreams()
    for d in devices:
        rng = stream(seed, f"arrivals/{d}")
        if arrivals.kind == "poisson":
            mean = 1 / arrivals.rate_per_s
            out.gaps[d] = Buffer(lambda r, n, m=mean: r.exponential(m, n), rng)
            out.first[d] = out.gaps[d].take()
        elif arrivals.kind == "fixed":
            gap = 1 / arrivals.rate_per_s
            out.gaps[d] = Buffer(lambda r, n, g=gap: np.full(n, g), rng)
            out.first[d] = float(rng.uniform(0, gap))  # devices are not in lock step
        elif arrivals.kind == "closed":
            think = arrivals.think_s
            out.gaps[d] = Buffer(lambda r, n, m=think: r.exponential(m, n) if m > 0 else np.zeros(n), rng)
    if arrivals.kind == "trace":
        for d, ts in read_arrival_trace(arrivals.path, devices).items():
            if not ts:
                continue
            out.trace_times[d] = ts
            out.gaps[d] = Gaps([b - a for a, b in zip(ts, ts[1:], strict=False)])
            out.first[d] = ts[0]
        if not out.first:
            raise TestbedError(f"arrivals.path: trace {arrivals.path} has no arrivals for devices {devices}")
    return out
