"""The partition problem and its answers: ordered tiers of candidate resources, constraints, configurations.

A configuration gives each tier, in order, a contiguous and possibly empty run of blocks on one of that
tier's candidates; the first tier (the device, which holds the input) always has a resource. The data
path visits the first tier and every later tier that runs at least one block. Latency is the sum of the
block latencies, plus each running tier's resource's per-call overhead once (``Candidate.call_overhead_s``:
block latencies of compiled profiles are net of it; 0 for legacy and version-1 profiles), plus, per hop,
``delay_ms / 1000 + bytes / (bandwidth_mbps * 125000)``, where bytes is the
output of the last block run before the hop, or the input size when no block has run yet; ``delay_ms`` is
the link's round trip ``rtt_ms`` times its ``rtt_share`` (1 in the original tool, 0.5 in the simulator).

``legacy_zero_rule`` reproduces the original tool exactly: it decided whether a tier "ran" by its compute
time being zero, so the earliest hop after which no compute time remains carried no bytes.

Configuration ids are produced and parsed here only. The canonical id names Keras layer ranges, as
``scission predict`` prints them (``device:0-87,edge:88-92``, empty tiers left out); block ranges are
accepted under an explicit prefix (``blocks:device:0-86,edge:87-91``) and ``<tier>-only`` everywhere.
Converting needs each block's layer range (``BlockLayers``, from the profile).
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
    """One resource's view of the model: per-block latency, output size and layer range.

    ``call_overhead_s``: the cost of calling one compiled callable, paid once by a tier that runs any
    block on this resource (its block latencies are net of it).
    """

    name: str
    latencies_s: tuple[float, ...]
    output_bytes: tuple[int, ...]
    first_layers: tuple[int, ...]
    last_layers: tuple[int, ...]
    call_overhead_s: float = 0.0

    def __post_init__(self) -> None:
        n = len(self.latencies_s)
        if n == 0:
            raise ScissionError(f"candidate {self.name!r} has no blocks")
        if not (len(self.output_bytes) == len(self.first_layers) == len(self.last_layers) == n):
            raise ScissionError(f"candidate {self.name!r}: per-block columns differ in length")
        if any(not (math.isfinite(t) and t >= 0) for t in self.latencies_s):
            raise ScissionError(f"candidate {self.name!r}: block latencies must be finite and >= 0")
        if not (math.isfinite(self.call_overhead_s) and self.call_overhead_s >= 0):
            raise ScissionError(f"candidate {self.name!r}: call overhead {self.call_overhead_s!r} s must be finite and >= 0")

    def range_s(self, first: int, end: int) -> float:
        """Compute time of blocks first..end-1 run as one call: their latencies, then the call overhead once
        (0 when the range is empty). The one place the cost of a tier's compute is defined."""
        total = 0.0  # a float even when the tier runs nothing: one JSON type per field
        for b in range(first, end):
            total += self.latencies_s[b]
        if end > first and self.call_overhead_s:
            total += self.call_overhead_s
        return total

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

    @property
    def layers(self) -> BlockLayers:
        """The model's block -> layer ranges (the first device's profile; every resource profiles the same blocks)."""
        c = self.tiers[0].candidates[0]
        return BlockLayers(c.first_layers, c.last_layers)

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
    call_overhead_s: float = 0.0  # the part of compute_s that is the per-call overhead (0 when it runs nothing)

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
        """'device:0-87,edge:88-92': the canonical id, the layer ranges this configuration prints."""
        return _format((p.tier, p.first_layer, p.last_layer) for p in self.placements if p.runs)

    @property
    def block_id(self) -> str:
        """'blocks:device:0-86,edge:87-91': the same configuration as block ranges."""
        return block_config_id((p.tier for p in self.placements), self.block_counts)

    @property
    def block_counts(self) -> tuple[int, ...]:
        return tuple(p.last_block - p.first_block + 1 if p.runs else 0 for p in self.placements)


@dataclass(frozen=True)
class BlockLayers:
    """Each block's Keras layer range, in block order: what turns block ranges into layer ranges and back.

    Configuration ids name layers (what ``scission predict`` prints), while the simulator and the run
    think in blocks; a model's profile holds both, so every place that reads or writes an id passes one.
    """

    first_layers: tuple[int, ...]
    last_layers: tuple[int, ...]

    def __post_init__(self) -> None:
        n = len(self.first_layers)
        if n == 0 or len(self.last_layers) != n:
            raise ScissionError("a model needs at least one block, each with a first and a last layer")
        for b in range(n):
            if self.last_layers[b] < self.first_layers[b] or (b and self.first_layers[b] <= self.last_layers[b - 1]):
                raise ScissionError(f"block {b}: layers {self.first_layers[b]}-{self.last_layers[b]} do not follow "
                                    "the previous block's; layer ranges must increase block by block")

    @classmethod
    def of(cls, blocks: Iterable) -> BlockLayers:
        """From anything with ``first_layer``/``last_layer`` per block (a ``ModelProfile``'s blocks)."""
        blocks = list(blocks)
        return cls(tuple(int(b.first_layer) for b in blocks), tuple(int(b.last_layer) for b in blocks))

    @classmethod
    def one_per_block(cls, block_count: int) -> BlockLayers:
        """A model whose block i is layer i alone (small synthetic models in tests and examples)."""
        return cls(tuple(range(block_count)), tuple(range(block_count)))

    @property
    def block_count(self) -> int:
        return len(self.first_layers)

    def describe(self) -> str:
        """'layers 0-156 in blocks 0-65': what the model's ids may cover, for error messages."""
        return (f"layers {self.first_layers[0]}-{self.last_layers[-1]} in blocks 0-{self.block_count - 1} "
                f"(block ranges are written '{BLOCKS_PREFIX}...')")


BLOCKS_PREFIX = "blocks:"


def _format(parts: Iterable[tuple[str, int, int]]) -> str:
    """The one place an id's text is spelled: 'tier:first-last' per running tier, comma-separated."""
    return ",".join(f"{tier}:{lo}-{hi}" for tier, lo, hi in parts)


def _ranges(tiers: Iterable[str], block_counts: Iterable[int], lo_of, hi_of) -> str:
    parts, start = [], 0
    for tier, count in zip(tiers, block_counts, strict=True):
        if count:
            parts.append((tier, lo_of(start), hi_of(start + count - 1)))
        start += count
    return _format(parts)


def config_id(tiers: Iterable[str], block_counts: Iterable[int], layers: BlockLayers) -> str:
    """The one producer of canonical configuration ids: 'device:0-87,edge:88-92', the inclusive Keras layer
    ranges of the tiers that run, in tier order (exactly the ranges ``scission predict`` prints)."""
    return _ranges(tiers, block_counts, layers.first_layers.__getitem__, layers.last_layers.__getitem__)


def block_ranges(tiers: Iterable[str], block_counts: Iterable[int]) -> str:
    """'device:0-9,edge:10-65': inclusive block ranges without the prefix (the ids written before issue 12,
    still read from old run folders, and the simulator's random-stream names, which must not change)."""
    return _ranges(tiers, block_counts, int, int)


def block_config_id(tiers: Iterable[str], block_counts: Iterable[int]) -> str:
    """'blocks:device:0-9,edge:10-65': the same configuration as block ranges, under the explicit prefix."""
    return BLOCKS_PREFIX + block_ranges(tiers, block_counts)


def parse_config_id(text: str, tiers: Sequence[str], layers: BlockLayers, unprefixed: str = "layers") -> tuple[int, ...]:
    """Block counts per tier from a configuration id; the inverse of ``config_id`` and ``block_config_id``.

    Accepted: layer ranges ('device:0-87,edge:88-92'), block ranges under the prefix
    ('blocks:device:0-86,edge:87-91') and '<tier>-only'. ``unprefixed="blocks"`` reads unprefixed ids as
    block ranges: only for files written before issue 12, which say so by lacking ``config_ids: layers``.
    Raises ValueError naming what is wrong and the model's valid layer and block ranges (callers wrap it).
    """
    if unprefixed not in ("layers", "blocks"):
        raise ValueError(f"unprefixed ids are 'layers' or 'blocks', not {unprefixed!r}")
    text = text.strip()
    n = layers.block_count
    for index, tier in enumerate(tiers):
        if text == f"{tier}-only":
            counts = [0] * len(tiers)
            counts[index] = n
            return tuple(counts)
    as_blocks = unprefixed == "blocks"
    body = _from_printed(text, tiers) if "=" in text else text
    if text.startswith(BLOCKS_PREFIX) and ":" in text[len(BLOCKS_PREFIX):]:
        as_blocks, body = True, text[len(BLOCKS_PREFIX):].strip()
    try:
        return _parse_ranges(body, tiers, layers, as_blocks)
    except ValueError as exc:
        hint = ""
        if not as_blocks:
            try:
                _parse_ranges(body, tiers, layers, True)
                hint = f"; as block ranges it fits: write '{BLOCKS_PREFIX}{body}'"
            except ValueError:
                pass
        raise ValueError(f"{exc}; the model has {layers.describe()}{hint}") from None


_PRINTED_RE = re.compile(r"([A-Za-z][A-Za-z0-9_-]*)\((.*?)\)\s*=\s*(-?\d+)\s*-\s*(-?\d+)")


def _from_printed(text: str, tiers: Sequence[str]) -> str:
    """'Device(raspi4) = 0 - 6, Edge(None) = -1 - -1, Cloud(6700k(GPU)) = 7 - 25' (a ``predict`` line, with or
    without its '[1] 9.0106s - 2.4087MB - ' head) -> 'device:0-6,cloud:7-25'; the resources are not part of
    an id (a simulation or experiment file maps tiers to resources itself)."""
    by_lower = {t.lower(): t for t in tiers}
    parts = []
    for label, _resource, lo, hi in _PRINTED_RE.findall(text):
        tier = by_lower.get(label.lower(), label)
        if (lo, hi) != ("-1", "-1"):
            parts.append(f"{tier}:{lo}-{hi}")
    if not parts:
        raise ValueError(f"{text!r} is neither 'tier:first-last,...' nor a predict line 'Tier(name) = first - last, ...'")
    return ",".join(parts)


def _parse_ranges(body: str, tiers: Sequence[str], layers: BlockLayers, as_blocks: bool) -> tuple[int, ...]:
    n = layers.block_count
    unit = "blocks" if as_blocks else "layers"
    if as_blocks:
        start_block = {b: b for b in range(n)}
        end_block = start_block
        first_of, last_of = (lambda b: b), (lambda b: b)
    else:
        start_block = {layer: b for b, layer in enumerate(layers.first_layers)}
        end_block = {layer: b for b, layer in enumerate(layers.last_layers)}
        first_of, last_of = layers.first_layers.__getitem__, layers.last_layers.__getitem__
    counts = [0] * len(tiers)
    expected, last_tier = 0, -1
    for part in body.split(","):
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
        if expected >= n:
            raise ValueError(f"{tier} runs {unit} {lo}-{hi} after every block has run")
        if hi < lo or start_block.get(lo) != expected:
            raise ValueError(f"{tier} runs {unit} {lo}-{hi} but the next {unit[:-1]} to run is {first_of(expected)}")
        if hi not in end_block:
            ends = [last_of(b) for b in range(expected, n)]
            shown = ", ".join(map(str, ends[:8])) + (", ..." if len(ends) > 8 else "")
            raise ValueError(f"{tier} runs {unit} {lo}-{hi}, but {hi} ends no block; "
                             f"a range from {lo} may end at {unit} {shown}")
        end = end_block[hi]
        counts[index] = end - expected + 1
        expected, last_tier = end + 1, index
    if expected != n:
        covered = "nothing" if expected == 0 else f"{unit} {first_of(0)}-{last_of(expected - 1)}"
        raise ValueError(f"it covers {covered} but the model has {unit} {first_of(0)}-{last_of(n - 1)}")
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
    computes = [cand.range_s(lo, hi) if cand is not None else 0.0 for _, cand, lo, hi in segments]

    # Hops along the data path: the device, then every later tier that runs a block.
    path = [0] + [i for i in range(1, len(tiers)) if segments[i][3] > segments[i][2]]
    sent = [0.0] * len(tiers)
    transfer_s = 0.0
    zeroed = False
    for sender, receiver in zip(path, path[1:], strict=False):
        _, cand, lo, hi = segments[sender]
        if hi > lo:
            payload = float(cand.output_bytes[hi - 1])
        else:
            # Nothing run yet on this tier: it forwards what it received (only the device can be empty here).
            payload = problem.input_bytes
        if problem.legacy_zero_rule and not zeroed and sum(computes[sender + 1:]) == 0:
            payload, zeroed = 0.0, True
        link = problem.network.link(segments[sender][1].name, segments[receiver][1].name)
        sent[sender] = payload
        transfer_s += link.delay_ms / 1000 + payload / link.bandwidth_bytes_per_s
    if zeroed and path[-1] < len(tiers) - 1:
        # The original kept the last edge's output in its reported bytes (and upload filter) once the
        # device's payload had been zeroed, although nothing follows it; only the final tier is exempt.
        _, cand, lo, hi = segments[path[-1]]
        sent[path[-1]] = float(cand.output_bytes[hi - 1])
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
                call_overhead_s=float(cand.call_overhead_s) if runs else 0.0,
            )
        )
    total_compute = 0.0
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
