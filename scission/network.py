"""Network tables: round-trip time and bandwidth per directed (sender, receiver) pair."""

from __future__ import annotations

import csv
import math
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from scission.errors import MissingNetworkPair, NetworkTableError
from scission.units import BYTES_PER_S_PER_MBPS


@dataclass(frozen=True)
class NetworkLink:
    """One directed link: a hop costs ``rtt_share`` round trips plus bytes / bandwidth.

    ``rtt_ms`` is always a round trip. The original tool charges a whole one per hop (``rtt_share`` 1, its
    answers stay exact); the simulator charges the one-way propagation delay, half of it (``rtt_share`` 0.5).
    """

    source: str
    destination: str
    rtt_ms: float
    bandwidth_mbps: float
    rtt_share: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rtt_ms) and self.rtt_ms >= 0):
            raise NetworkTableError(f"rtt {self.rtt_ms} ms on {self.source} -> {self.destination} must be >= 0")
        if not (math.isfinite(self.bandwidth_mbps) and self.bandwidth_mbps > 0):
            raise NetworkTableError(
                f"bandwidth {self.bandwidth_mbps} Mbit/s on {self.source} -> {self.destination} must be > 0"
            )
        if not 0 <= self.rtt_share <= 1:
            raise NetworkTableError(f"rtt_share {self.rtt_share} on {self.source} -> {self.destination} "
                                    "must be between 0 and 1")

    @property
    def delay_ms(self) -> float:
        """The fixed time a hop is charged: ``rtt_share`` of the round trip."""
        return self.rtt_ms * self.rtt_share if self.rtt_share != 1 else self.rtt_ms

    @property
    def bandwidth_bytes_per_s(self) -> float:
        return self.bandwidth_mbps * BYTES_PER_S_PER_MBPS

    def transfer_s(self, size_bytes: float) -> float:
        """Seconds for one hop carrying size_bytes (the original tool's model: full RTT, then the bytes)."""
        return self.delay_ms / 1000 + size_bytes / self.bandwidth_bytes_per_s


class NetworkTable:
    """Directed links keyed by (source, destination) resource names."""

    def __init__(self, links: Iterable[NetworkLink] = ()):
        self._links: dict[tuple[str, str], NetworkLink] = {}
        for link in links:
            self._links[(link.source, link.destination)] = link

    def __contains__(self, pair: tuple[str, str]) -> bool:
        return pair in self._links

    def __iter__(self) -> Iterator[NetworkLink]:
        return iter(self._links.values())

    def __len__(self) -> int:
        return len(self._links)

    def get(self, source: str, destination: str) -> NetworkLink | None:
        return self._links.get((source, destination))

    def link(self, source: str, destination: str) -> NetworkLink:
        try:
            return self._links[(source, destination)]
        except KeyError:
            raise MissingNetworkPair(source, destination) from None

    @classmethod
    def uniform(cls, names: Iterable[str], rtt_ms: float, bandwidth_mbps: float) -> NetworkTable:
        """Every ordered pair of distinct names gets the same link; handy for tests and sweeps."""
        names = list(names)
        return cls(NetworkLink(a, b, rtt_ms, bandwidth_mbps) for a in names for b in names if a != b)


def load_network_csv(path: str | Path) -> NetworkTable:
    """Read the original tool's `source,destination,ping(ms),bandwidth(mbps)` table (space-padded)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NetworkTableError(f"network table {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NetworkTableError(f"cannot read network table {path}: {exc}") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise NetworkTableError(f"network table {path} is empty")
    header = [cell.strip().lower() for cell in rows[0]]
    if header[:2] != ["source", "destination"] or len(header) < 4:
        raise NetworkTableError(
            f"{path} line 1: expected header 'source,destination,ping(ms),bandwidth(mbps)', got {rows[0]!r}"
        )
    links = []
    for line_no, row in enumerate(rows[1:], start=2):
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if len(cells) != 4:
            raise NetworkTableError(f"{path} line {line_no}: expected 4 fields, got {len(cells)}: {row!r}")
        source, destination, ping, bandwidth = cells
        if not source or not destination:
            raise NetworkTableError(f"{path} line {line_no}: empty source or destination")
        try:
            rtt_ms, bandwidth_mbps = float(ping), float(bandwidth)
        except ValueError:
            raise NetworkTableError(
                f"{path} line {line_no}: ping {ping!r} and bandwidth {bandwidth!r} must be numbers"
            ) from None
        try:
            links.append(NetworkLink(source, destination, rtt_ms, bandwidth_mbps))
        except NetworkTableError as exc:
            raise NetworkTableError(f"{path} line {line_no}: {exc}") from None
    return NetworkTable(links)


class Routes:
    """Fewest-hops routes over a topology's links: the one rule the run's prediction and the simulator share.

    Breadth first from the sender, each node's neighbours taken in the order its links are listed; a node
    keeps the first route that reaches it, so the route is the same on every call and on both sides.
    """

    def __init__(self, links: Iterable[tuple[str, str]]):
        self._neighbours: dict[str, list[str]] = {}
        for a, b in links:
            for x, y in ((a, b), (b, a)):
                around = self._neighbours.setdefault(x, [])
                if y not in around:
                    around.append(y)
        self._from: dict[str, dict[str, tuple[str, ...]]] = {}

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(self._neighbours)

    def path(self, a: str, b: str) -> tuple[str, ...] | None:
        """The nodes from ``a`` to ``b``, both included; None when no route joins them."""
        return self.paths_from(a).get(b)

    def paths_from(self, a: str) -> dict[str, tuple[str, ...]]:
        """Every node ``a`` reaches -> its route from ``a``, nearest first."""
        if a not in self._from:
            paths = {a: (a,)}
            queue = deque([a])
            while queue:
                x = queue.popleft()
                for y in self._neighbours.get(x, ()):
                    if y not in paths:
                        paths[y] = (*paths[x], y)
                        queue.append(y)
            self._from[a] = paths
        return self._from[a]
