"""Random streams: one seeded generator per named stream, and numbers handed out one at a time from batches.

Every random quantity of a run (inter-arrival gaps, block times, jitter, random-walk conditions) comes from
its own stream ``stream(seed, key)``, so adding a device or a policy does not shift the numbers another
part of the model draws. ``Buffer`` draws ``BATCH`` numbers at a time from numpy and hands them out as
Python floats (one numpy call per 4,096 requests, not per request); ``Gaps`` replays a trace's gaps.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

__all__ = ["BATCH", "Buffer", "Gaps", "stream"]

BATCH = 4096


def stream(seed: int, key: str) -> np.random.Generator:
    """A generator for one named stream of one seed: the same (seed, key) always gives the same numbers."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, zlib.crc32(key.encode())])))


class Buffer:
    """Numbers drawn by ``draw(rng, n) -> array`` BATCH at a time, handed out one by one as Python floats."""

    __slots__ = ("draw", "rng", "buf", "i")

    def __init__(self, draw: Callable[[np.random.Generator, int], np.ndarray], rng: np.random.Generator):
        self.draw = draw
        self.rng = rng
        self.buf: list[float] = []
        self.i = 0

    def take(self) -> float:
        i = self.i
        if i >= len(self.buf):
            self.buf = self.draw(self.rng, BATCH).tolist()
            i = 0
        self.i = i + 1
        return self.buf[i]


class Gaps:
    """The gaps of an arrival trace in order, then None."""

    __slots__ = ("gaps", "i")

    def __init__(self, gaps: list[float]):
        self.gaps = gaps
        self.i = 0

    def take(self) -> float | None:
        if self.i >= len(self.gaps):
            return None
        self.i += 1
        return self.gaps[self.i - 1]
