"""Exact top-k partition search (placeholder: brute force until the DP lands)."""

from __future__ import annotations

from scission.bruteforce import brute_force
from scission.problem import Configuration, Problem


def search(problem: Problem, k: int = 5) -> list[Configuration]:
    return brute_force(problem, k)
