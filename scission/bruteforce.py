"""Reference enumerator: every configuration, evaluated and filtered one by one.

Exponential in the number of tiers; it exists to check the real search (``scission.search``) on small
instances, and as the executable definition of the cost model and constraints.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from scission.errors import MissingNetworkPair
from scission.problem import Configuration, Problem, evaluate, satisfies


def _compositions(total: int, parts: int) -> Iterator[tuple[int, ...]]:
    if parts == 1:
        yield (total,)
        return
    for first in range(total + 1):
        for rest in _compositions(total - first, parts - 1):
            yield (first, *rest)


def all_configurations(problem: Problem) -> Iterator[Configuration]:
    n = problem.block_count
    tiers = problem.tiers
    for counts in _compositions(n, len(tiers)):
        if any(counts[i] and not tiers[i].candidates for i in range(len(tiers))):
            continue
        choices = [
            [c.name for c in tiers[i].candidates] if (i == 0 or counts[i]) else [None] for i in range(len(tiers))
        ]
        for resources in itertools.product(*choices):
            try:
                yield evaluate(problem, resources, counts)
            except MissingNetworkPair:
                continue  # only reachable for configurations the constraints exclude (see check_network)


def brute_force(problem: Problem, k: int = 5) -> list[Configuration]:
    feasible = [c for c in all_configurations(problem) if satisfies(problem, c)]
    feasible.sort(key=lambda c: c.latency_s)
    return feasible[:k]
