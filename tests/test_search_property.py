"""The DP search agrees with brute-force enumeration on small random instances, constraints included."""

from __future__ import annotations

import math
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scission.bruteforce import brute_force
from scission.network import NetworkLink, NetworkTable
from scission.problem import Candidate, Problem, Tier, TierConstraints, satisfies
from scission.search import search

latency = st.one_of(st.just(0.0), st.floats(min_value=0.001, max_value=2.0, allow_nan=False))
# per-call overhead of a compiled resource (issue 13): paid once by a tier that runs blocks; often 0 (legacy)
call_overhead = st.one_of(st.just(0.0), st.floats(min_value=0.001, max_value=1.0, allow_nan=False))


@st.composite
def problems(draw):
    n = draw(st.integers(1, 6))
    tier_count = draw(st.integers(1, 4))
    # Layer ranges: each block spans 1-3 layers, contiguous from 0.
    spans = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    first, last, layer = [], [], 0
    for span in spans:
        first.append(layer)
        last.append(layer + span - 1)
        layer += span
    layer_count = layer
    tiers, names = [], []
    for t in range(tier_count):
        cands = []
        for r in range(draw(st.integers(1 if t == 0 else 0, 3))):
            name = f"t{t}r{r}"
            names.append(name)
            lats = tuple(draw(st.lists(latency, min_size=n, max_size=n)))
            outs = tuple(draw(st.lists(st.integers(0, 5_000_000), min_size=n, max_size=n)))
            cands.append(Candidate(name, lats, outs, tuple(first), tuple(last), draw(call_overhead)))
        tiers.append(Tier(f"tier{t}", tuple(cands)))
    links = []
    for a in names:
        for b in names:
            if a != b and draw(st.integers(0, 19)) > 0:  # now and then a pair is missing
                links.append(NetworkLink(a, b, draw(st.floats(0, 200)), draw(st.floats(0.5, 100))))
    constraints = {}
    for tier in tiers:
        if not draw(st.booleans()):
            continue
        names_t = [c.name for c in tier.candidates]
        kwargs = {}
        choice = draw(st.integers(0, 8))
        if choice == 0:
            kwargs["must_run"] = draw(st.booleans())
        elif choice == 1:
            kwargs["include_layers"] = tuple(draw(st.lists(st.integers(0, layer_count), max_size=2)))
        elif choice == 2:
            kwargs["exclude_layers"] = tuple(draw(st.lists(st.integers(0, layer_count), max_size=2)))
        elif choice == 3 and names_t:
            kwargs["include_resources"] = (draw(st.sampled_from(names_t)),)
        elif choice == 4 and names_t:
            kwargs["exclude_resources"] = (draw(st.sampled_from(names_t)),)
        elif choice == 5:
            kwargs["upload_cap_bytes"] = draw(st.floats(0, 5_000_000))
        elif choice == 6:
            kwargs["time_cap_s"] = draw(st.floats(0, 4))
        elif choice == 7:
            kwargs["time_cap_pct"] = draw(st.floats(0, 100))
        else:
            kwargs["include_layers"] = (draw(st.integers(0, layer_count)),)
            kwargs["exclude_layers"] = (draw(st.integers(0, layer_count)),)
        constraints[tier.name] = TierConstraints(**kwargs)
    return Problem(
        tiers=tuple(tiers),
        network=NetworkTable(links),
        input_bytes=draw(st.sampled_from([0, 150_000, 1_000_000])),
        constraints=constraints,
        legacy_zero_rule=draw(st.booleans()),
    )


def _needs_missing_pair(problem: Problem) -> bool:
    from scission.errors import MissingNetworkPair
    from scission.partition import check_network

    try:
        check_network(problem)
    except MissingNetworkPair:
        return True
    return False


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), st.integers(1, 6))
def test_search_matches_brute_force(problem, k):
    if _needs_missing_pair(problem):
        return
    expected = brute_force(problem, k)
    got = search(problem, k)
    assert [round(c.latency_s, 9) for c in got] == [round(c.latency_s, 9) for c in expected]
    assert len({c.key for c in got}) == len(got)
    for config in got:
        assert satisfies(problem, config)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), st.integers(1, 6))
def test_search_matches_brute_force_with_call_overheads(problem, k):
    """Every resource compiled: a non-zero overhead on each, so the search must charge it once per running tier."""
    problem = Problem(
        tuple(Tier(t.name, tuple(replace(c, call_overhead_s=c.call_overhead_s or 0.05) for c in t.candidates))
              for t in problem.tiers),
        problem.network, problem.input_bytes, problem.constraints, problem.legacy_zero_rule)
    if _needs_missing_pair(problem):
        return
    expected = brute_force(problem, k)
    got = search(problem, k)
    assert [round(c.latency_s, 9) for c in got] == [round(c.latency_s, 9) for c in expected]
    for config in got:
        assert satisfies(problem, config)
        for p in config.placements:
            assert p.call_overhead_s == (problem.candidate(config.placements.index(p), p.resource).call_overhead_s
                                         if p.runs else 0.0)


@settings(max_examples=150, deadline=None)
@given(problems())
def test_every_configuration_covers_all_blocks_in_order(problem):
    if _needs_missing_pair(problem):
        return
    for config in search(problem, 5):
        ranges = [(p.first_block, p.last_block) for p in config.placements if p.runs]
        covered = [b for lo, hi in ranges for b in range(lo, hi + 1)]
        assert covered == list(range(problem.block_count))
        assert config.placements[0].resource is not None


@settings(max_examples=150, deadline=None)
@given(problems(), st.floats(1.5, 10))
def test_latency_never_rises_when_bandwidth_rises(problem, factor):
    if _needs_missing_pair(problem) or any(c.time_cap_pct is not None for c in problem.constraints.values()):
        return
    before = search(problem, 1)
    faster = NetworkTable(
        NetworkLink(ln.source, ln.destination, ln.rtt_ms, ln.bandwidth_mbps * factor) for ln in problem.network
    )
    after = search(Problem(problem.tiers, faster, problem.input_bytes, problem.constraints, False), 1)
    if before and not problem.legacy_zero_rule:
        assert after and after[0].latency_s <= before[0].latency_s * (1 + 1e-12) + 1e-12
    assert math.isfinite(after[0].latency_s) if after else True
