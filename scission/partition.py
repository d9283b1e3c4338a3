"""From profiles and a network table to the best configurations of one model (the public search API)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from scission.errors import MissingNetworkPair, ScissionError, UnknownModel
from scission.network import NetworkTable
from scission.problem import (
    DEFAULT_INPUT_BYTES,
    DEFAULT_TIERS,
    Candidate,
    Configuration,
    Problem,
    Tier,
    TierConstraints,
)
from scission.profiles import ModelProfile, Profile


def known_models(profiles: Iterable[Profile]) -> list[str]:
    return sorted({m for p in profiles for m in p.models})


@dataclass(frozen=True)
class InputSize:
    """The input size a search charges when the device sends its input on, and where it came from.

    ``source`` is "flag" (the user gave it), "profile" (the profiles' stored input bytes), or "default"
    (no profile stores one: legacy ``.dat`` files, whose tool assumed 0.15 MB). ``note`` is set when the
    profiles disagree, saying which value is used.
    """

    size_bytes: float
    source: str
    note: str | None = None


def model_input_size(profiles: Iterable[Profile], model: str, first_tier: str | None = None,
                     given_bytes: float | None = None) -> InputSize:
    """The one rule for a model's input size, shared by ``scission predict``, ``testbed run`` and the simulator.

    A given size wins. Otherwise the profiles' stored input bytes when they agree; when they disagree,
    the first-tier (device) profile's, since the device holds the input; with none stored, 0.15 MB.
    """
    if given_bytes is not None:
        return InputSize(float(given_bytes), "flag")
    model = model.lower()
    stored = sorted(
        ((p.resource.tier != first_tier, p.resource.label, p.models[model].input_bytes)
         for p in profiles if model in p.models and p.models[model].input_bytes is not None),
    )
    if not stored:
        return InputSize(float(DEFAULT_INPUT_BYTES), "default")
    values = {size for _, _, size in stored}
    _, label, chosen = stored[0]
    if len(values) == 1:
        return InputSize(float(chosen), "profile")
    listed = ", ".join(f"{lab} {size:,} bytes" for _, lab, size in stored)
    return InputSize(float(chosen), "profile",
                     f"the profiles disagree on {model}'s input size ({listed}); using {chosen:,} bytes "
                     f"from {label}")


def candidate_from_model(name: str, model: ModelProfile) -> Candidate:
    return Candidate(
        name=name,
        latencies_s=tuple(model.latencies_s),
        output_bytes=tuple(b.output_bytes for b in model.blocks),
        first_layers=tuple(b.first_layer for b in model.blocks),
        last_layers=tuple(b.last_layer for b in model.blocks),
        call_overhead_s=model.call_overhead_s,
    )


def build_problem(
    profiles: Sequence[Profile],
    network: NetworkTable,
    model: str,
    tiers: Sequence[str] = DEFAULT_TIERS,
    constraints: Mapping[str, TierConstraints] | None = None,
    input_bytes: float | None = None,
    legacy_zero_rule: bool = False,
) -> Problem:
    """Group the profiles' resources into ordered tiers; resources of tiers not listed are ignored.

    ``input_bytes`` None: ``model_input_size`` of the listed tiers' profiles (stored size, else 0.15 MB).
    """
    model = model.lower()
    if not any(model in p.models for p in profiles):
        raise UnknownModel(model, known_models(profiles))
    tier_objs = []
    for tier in tiers:
        cands = tuple(
            candidate_from_model(p.resource.name, p.models[model])
            for p in profiles
            if p.resource.tier == tier and model in p.models
        )
        tier_objs.append(Tier(tier, cands))
    if not tier_objs[0].candidates:
        raise ScissionError(f"no {tiers[0]} resource has a profile of {model}; a {tiers[0]} holds the input")
    if input_bytes is None:
        input_bytes = model_input_size([p for p in profiles if p.resource.tier in tiers], model, tiers[0]).size_bytes
    return Problem(
        tiers=tuple(tier_objs),
        network=network,
        input_bytes=input_bytes,
        constraints=dict(constraints or {}),
        legacy_zero_rule=legacy_zero_rule,
    )


def check_network(problem: Problem) -> None:
    """Fail early, naming the pair, when a configuration the constraints allow needs a missing row."""
    tiers = problem.tiers
    allowed = []
    for index, tier in enumerate(tiers):
        c = problem.constraint(tier.name)
        names = [cand.name for cand in tier.candidates if c.allows_resource(cand.name)]
        can_run = c.must_run is not False and bool(names)
        allowed.append((names, can_run, index == 0 or not c.requires_run))
    for s in range(len(tiers)):
        if s > 0 and not allowed[s][1]:
            continue
        for r in range(s + 1, len(tiers)):
            if not allowed[r][1]:
                continue
            if not all(allowed[m][2] for m in range(s + 1, r)):
                continue
            for a in allowed[s][0] if s > 0 else [c.name for c in tiers[0].candidates]:
                for b in allowed[r][0]:
                    if (a, b) not in problem.network:
                        raise MissingNetworkPair(a, b)


def search_problem(problem: Problem, k: int = 5) -> list[Configuration]:
    from scission.search import search

    check_network(problem)
    return search(problem, k)


def partition(
    profiles: Sequence[Profile],
    network: NetworkTable,
    model: str,
    k: int = 5,
    tiers: Sequence[str] = DEFAULT_TIERS,
    constraints: Mapping[str, TierConstraints] | None = None,
    input_bytes: float | None = None,
    legacy_zero_rule: bool = False,
) -> list[Configuration]:
    """The top ``k`` configurations of ``model`` (fastest first) over the given ordered tiers."""
    problem = build_problem(profiles, network, model, tiers, constraints, input_bytes, legacy_zero_rule)
    return search_problem(problem, k)
