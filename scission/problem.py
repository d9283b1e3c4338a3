"""The partition problem and its answers: ordered tiers of candidate resources, constraints, configurations.

A configuration gives each tier, in order, a contiguous and possibly empty run of blocks on one of that
tier's candidates; the first tier (the device, which holds the input) always has a resource. The data
path visits the first tier and every later tier that runs at least one block. Latency is the sum of the
block latencies plus, per hop, ``delay_ms / 1000 + bytes / (bandwidth_mbps * 125000)``, where bytes is the
output of the last block run before the hop, or the input size when no block has run yet; ``delay_ms`` is
the link's round trip ``rtt_ms`` times its ``rtt_share`` (1 in the original tool, 0.5 in the simulator).

``legacy_zero_rule`` reproduces the original tool exactly: it decided whether a tier "ran" by its compute
time being zero, so the earliest hop after which no compute time remains carried no bytes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from scission.errors import ConstraintError, ScissionError
from scission.network import NetworkTable

DEFAULT_INPUT_BYTES = 150_000
DEFAULT_TIERS = ("device", "edge", "cloud")  # the original tool's three tiers; any ordered names work
_RANGE_RE = re.compile(r"^\s*([a-z][a-z0-9-]*)\s*:\s*(\d+)\s*-\s*(\d+)\s*$")


@dataclass(frozen=True)
class Candidate:
    """One resource's view of the model: per-block latency, output size and layer range."""

    name: str
    latencies_s: tuple[float, ...]
    output_bytes: tuple[int, ...]
    first_layers: tuple[int, ...]
    last_layers: tuple[int, ...]

    def __post_init__(self) -> None:
        n = len(self.latencies_s)
        if n == 0:
            raise ScissionError(f"candidate {self.name!r} has no blocks")
        if not (len(self.output_bytes) == len(self.first_layers) == len(self.last_layers) == n):
            raise ScissionError(f"candidate {self.name!r}: per-block columns differ in length")
        if any(not (math.isfinite(t) and t >= 0) for t in self.latencies_s):
            raise ScissionError(f"candidate {self.name!r}: block latencies must be finite and >= 0")

    @property
    def block_count(self) -> int:
        return len(self.latencies_s)


@dataclass(frozen=True)
class Tier:
    name: str
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True)
class TierConstraints:
    """What a user may demand of one tier (the original tool's criteria plus caps).

    ``must_run``: True — runs at least one block; False — runs none; None — either.
    ``include_resources``/``exclude_resources`` also force the tier to run (the original's behaviour).
    ``time_cap_pct`` is a percentage of the configuration's total compute time.
    """

    include_layers: tuple[int, ...] = ()
    exclude_layers: tuple[int, ...] = ()
    must_run: bool | None = None
    include_resources: tuple[str, ...] = ()
    exclude_resources: tuple[str, ...] = ()
    upload_cap_bytes: float | None = None
    time_cap_s: float | None = None
    time_cap_pct: float | None = None

    def __post_init__(self) -> None:
        for label, value in (("upload cap", self.upload_cap_bytes), ("time cap", self.time_cap_s),
                             ("time cap %", self.time_cap_pct)):
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ConstraintError(f"{label} {value!r} must be a number >= 0")

    @property
    def requires_run(self) -> bool:
        return bool(self.must_run or self.include_resources or self.exclude_resources)

    def allows_resource(self, name: str) -> bool:
        if self.include_resources and name not in self.include_resources:
            return False
        return name not in self.exclude_resources


@dataclass(frozen=True)
class Problem:
    tiers: tuple[Tier, ...]
    network: NetworkTable
    input_bytes: float = DEFAULT_INPUT_BYTES
    constraints: dict[str, TierConstraints] = field(default_factory=dict)
    legacy_zero_rule: bool = False

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ScissionError("a problem needs at least one tier")
        if not self.tiers[0].candidates:
            raise ScissionError(f"the first tier ({self.tiers[0].name}) needs at least one resource")
        counts = {c.block_count for t in self.tiers for c in t.candidates}
        if len(counts) != 1:
            raise ScissionError(f"all resources must profile the same blocks; block counts differ: {sorted(counts)}")
        unknown = set(self.constraints) - {t.name for t in self.tiers}
        if unknown:
            raise ConstraintError(f"constraints name unknown tiers {sorted(unknown)}")
        if not (math.isfinite(self.input_bytes) and self.input_bytes >= 0):
            raise ConstraintError(f"input size {self.input_bytes!r} bytes must be >= 0")

    @property
    def block_count(self) -> int:
        return self.tiers[0].candidates[0].block_count

    def constraint(self, tier: str) -> TierConstraints:
        return self.constraints.get(tier, TierConstraints())

    def candidate(self, tier_index: int, name: str) -> Candidate:
        for c in self.tiers[tier_index].candidates:
            if c.name == name:
                return c
        raise ScissionError(f"tier {self.tiers[tier_index].name} has no resource {name!r}")


@dataclass(frozen=True)
class Placement:
    """What one tier does in a configuration; first/last are -1 when it runs no block."""

    tier: str
    resource: str | None
    first_block: int
    last_block: int
    first_layer: int
    last_layer: int
    compute_s: float
    sent_bytes: float

    @property
    def runs(self) -> bool:
        return self.first_block >= 0


@dataclass(frozen=True)
class Configuration:
    latency_s: float
    transfer_bytes: float
    placements: tuple[Placement, ...]
    transfer_s: float = 0.0

    @property
    def compute_s(self) -> float:
        return sum(p.compute_s for p in self.placements)

    @property
    def key(self) -> tuple:
        """Identity of the configuration (resources and block ranges), independent of its cost."""
        return tuple((p.tier, p.resource, p.first_block, p.last_block) for p in self.placements)

    @property
    def id(self) -> str:
        """'device:0-9,edge:10-65': inclusive block ranges of the tiers that run, in tier order."""
        return config_id(
            (p.tier for p in self.placements),
            (p.last_block - p.first_block + 1 if p.runs else 0 for p in self.placements),
        )

    @property
    def block_counts(self) -> tuple[int, ...]:
        return tuple(p.last_block - p.first_block + 1 if p.runs else 0 for p in self.placements)


def config_id(tiers: Iterable[str], block_counts: Iterable[int]) -> str:
    """The one producer of configuration ids: 'device:0-9,edge:10-65' from block counts per ordered tier."""
    parts, start = [], 0
    for tier, count in zip(tiers, block_counts, strict=True):
        if count:
            parts.append(f"{tier}:{start}-{start + count - 1}")
        start += count
    return ",".join(parts)


def parse_config_id(text: str, tiers: Sequence[str], block_count: int) -> tuple[int, ...]:
    """Block counts per tier from a configuration id or '<tier>-only'; the inverse of ``config_id``.

    Raises ValueError naming what is wrong (callers wrap it in their own error type).
    """
    text = text.strip()
    for index, tier in enumerate(tiers):
        if text == f"{tier}-only":
            counts = [0] * len(tiers)
            counts[index] = block_count
            return tuple(counts)
    counts = [0] * len(tiers)
    expected, last_tier = 0, -1
    for part in text.split(","):
        if part.strip() in (f"{tiers[0]}:-", ""):
            continue
        m = _RANGE_RE.match(part)
        if m is None:
            raise ValueError(f"{part.strip()!r} is not 'tier:first-last' (e.g. '{tiers[0]}:0-9,{tiers[-1]}:10-65')")
        tier, lo, hi = m.group(1), int(m.group(2)), int(m.group(3))
        if tier not in tiers:
            raise ValueError(f"tier {tier!r} is not one of {', '.join(tiers)}")
        index = tiers.index(tier)
        if index <= last_tier:
            raise ValueError(f"tiers must appear once each, in order {', '.join(tiers)}")
        if lo != expected or hi < lo:
            raise ValueError(f"{tier} runs blocks {lo}-{hi} but the next block to run is {expected}")
        counts[index] = hi - lo + 1
        expected, last_tier = hi + 1, index
    if expected != block_count:
        raise ValueError(f"it covers blocks 0-{expected - 1} but the model has blocks 0-{block_count - 1}")
    return tuple(counts)


def evaluate(problem: Problem, resources: Sequence[str | None], block_counts: Sequence[int]) -> Configuration:
    """Cost of one configuration: per tier, its resource (None when it runs nothing) and its block count.

    Summation order follows the original tool (block by block, tier by tier) so legacy answers agree
    to the last printed digit.
    """
    tiers = problem.tiers
    if len(resources) != len(tiers) or len(block_counts) != len(tiers):
        raise ScissionError(f"a configuration needs a resource and a block count for each of {len(tiers)} tiers")
    if sum(block_counts) != problem.block_count or any(c < 0 for c in block_counts):
        raise ScissionError(f"block counts {list(block_counts)} must be >= 0 and add up to {problem.block_count}")
    if resources[0] is None:
        raise ScissionError(f"the first tier ({tiers[0].name}) always needs a resource")
    segments = []  # (tier index, candidate or None, start, end)
    start = 0
    for index, (name, count) in enumerate(zip(resources, block_counts, strict=True)):
        if count and name is None:
            raise ScissionError(f"tier {tiers[index].name} runs {count} blocks but has no resource")
        if index > 0 and count == 0:
            name = None
        candidate = problem.candidate(index, name) if name is not None else None
        segments.append((index, candidate, start, start + count))
        start += count
    computes = []
    for _, cand, lo, hi in segments:
        total = 0
        if cand is not None:
            for b in range(lo, hi):
                total += cand.latencies_s[b]
        computes.append(total)

    # Hops along the data path: the device, then every later tier that runs a block.
    path = [0] + [i for i in range(1, len(tiers)) if segments[i][3] > segments[i][2]]
    sent = [0.0] * len(tiers)
    transfer_s = 0.0
    zeroed = False
    for sender, receiver in zip(path, path[1:], strict=False):
        _, cand, lo, hi = segments[sender]
        if hi > lo:
            payload = cand.output_bytes[hi - 1]
        else:
            # Nothing run yet on this tier: it forwards what it received (only the device can be empty here).
            payload = problem.input_bytes
        if problem.legacy_zero_rule and not zeroed and sum(computes[sender + 1:]) == 0:
            payload, zeroed = 0, True
        link = problem.network.link(segments[sender][1].name, segments[receiver][1].name)
        sent[sender] = payload
        transfer_s += link.delay_ms / 1000 + payload / link.bandwidth_bytes_per_s
    if zeroed and path[-1] < len(tiers) - 1:
        # The original kept the last edge's output in its reported bytes (and upload filter) once the
        # device's payload had been zeroed, although nothing follows it; only the final tier is exempt.
        _, cand, lo, hi = segments[path[-1]]
        sent[path[-1]] = cand.output_bytes[hi - 1]
    placements = []
    for index, cand, lo, hi in segments:
        runs = hi > lo
        placements.append(
            Placement(
                tier=tiers[index].name,
                resource=cand.name if cand is not None else None,
                first_block=lo if runs else -1,
                last_block=hi - 1 if runs else -1,
                first_layer=cand.first_layers[lo] if runs else -1,
                last_layer=cand.last_layers[hi - 1] if runs else -1,
                compute_s=computes[index],
                sent_bytes=sent[index],
            )
        )
    total_compute = 0
    for c in computes:
        total_compute += c
    return Configuration(
        latency_s=total_compute + transfer_s,
        transfer_bytes=sum(sent),
        placements=tuple(placements),
        transfer_s=transfer_s,
    )


def satisfies(problem: Problem, config: Configuration) -> bool:
    """Whether a configuration meets every constraint (the original tool's filters, generalised)."""
    total_compute = config.compute_s
    for p in config.placements:
        c = problem.constraint(p.tier)
        if c.must_run is True and not p.runs:
            return False
        if c.must_run is False and p.runs:
            return False
        if (c.include_resources or c.exclude_resources) and not (p.runs and c.allows_resource(p.resource)):
            return False
        for layer in c.include_layers:
            if not (p.first_layer <= layer <= p.last_layer):
                return False
        for layer in c.exclude_layers:
            if p.first_layer <= layer <= p.last_layer:
                return False
        if c.upload_cap_bytes is not None and p.sent_bytes > c.upload_cap_bytes:
            return False
        if c.time_cap_s is not None and p.compute_s > c.time_cap_s:
            return False
        if c.time_cap_pct is not None:
            if total_compute == 0:
                if p.compute_s > 0:
                    return False
            elif p.compute_s / total_compute * 100 > c.time_cap_pct:
                return False
    return True
