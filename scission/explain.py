"""Why a search found nothing, and what in a user's constraints looks like a mistake (pure: no printing).

An empty answer is explained by searching again with one constraint item left out at a time: every item
whose removal gives results is a culprit. When no single item is to blame, pairs are tried (only while
there are few items, each search being a full exact search). Warnings name items that can never match:
a layer past the model's last layer (often a numeric resource name meant as ``name:N``) and tiers that
no profile covers.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from scission.problem import Configuration, Problem, TierConstraints

__all__ = ["ConstraintItem", "constraint_items", "constraint_warnings", "explain_empty"]

_MAX_PAIR_ITEMS = 12  # 66 extra searches at most


@dataclass(frozen=True)
class ConstraintItem:
    """One removable piece of a tier's constraints, described as the user wrote it."""

    tier: str
    field: str
    value: object
    text: str

    def without(self, c: TierConstraints) -> TierConstraints:
        current = getattr(c, self.field)
        if isinstance(current, tuple):
            return replace(c, **{self.field: tuple(v for v in current if v != self.value)})
        return replace(c, **{self.field: None})


def _flag(tier: str, short: str, long: str, value: str) -> str:
    """The flag the user would write: the named flags of the original three tiers, else the generic one."""
    if tier in short.split():
        return f"--{tier}{long} {value}"
    generic = {"": "--criteria", "-upload": "--upload", "-time": "--time"}[long]
    return f"{generic} {tier}={value}"


def _describe(tier: str, field: str, value) -> str:
    crit = {
        "include_layers": (f"{value}", f"layer {value} on the {tier}"),
        "exclude_layers": (f"!{value}", f"layer {value} not on the {tier}"),
        "include_resources": (f"name:{value}", f"the {tier} runs on {value}"),
        "exclude_resources": (f"!name:{value}", f"the {tier} runs, not on {value}"),
        "must_run": ("!-1" if value else "-1", f"the {tier} runs {'at least one block' if value else 'no block'}"),
    }
    if field in crit:
        item, meaning = crit[field]
        return f"{_flag(tier, 'device edge cloud', '', item)} ({meaning})"
    if field == "upload_cap_bytes":
        return f"{_flag(tier, 'device edge', '-upload', f'{value / 1e6:g}')} (upload cap, MB)"
    if field == "time_cap_s":
        return f"{_flag(tier, 'device edge cloud', '-time', f'{value:g}')} (compute cap, s)"
    return f"{_flag(tier, 'device edge cloud', '-time', f'{value:g}%')} (compute cap, share of the total)"


def constraint_items(problem: Problem) -> list[ConstraintItem]:
    items = []
    for tier in (t.name for t in problem.tiers):
        c = problem.constraints.get(tier)
        if c is None:
            continue
        for field in ("include_layers", "exclude_layers", "include_resources", "exclude_resources"):
            items.extend(ConstraintItem(tier, field, v, _describe(tier, field, v)) for v in getattr(c, field))
        for field in ("must_run", "upload_cap_bytes", "time_cap_s", "time_cap_pct"):
            value = getattr(c, field)
            if value is not None:
                items.append(ConstraintItem(tier, field, value, _describe(tier, field, value)))
    return items


def _relaxed(problem: Problem, drop: Sequence[ConstraintItem]) -> Problem:
    constraints = dict(problem.constraints)
    for item in drop:
        constraints[item.tier] = item.without(constraints[item.tier])
    return replace(problem, constraints=constraints)


def explain_empty(problem: Problem, search: Callable[[Problem, int], list[Configuration]]) -> list[str]:
    """Lines saying which constraint items removed every candidate (after the 'No results' line)."""
    items = constraint_items(problem)
    if not items:
        return ["no configuration exists even without constraints"]
    if search(_relaxed(problem, items), 1) == []:
        return ["no configuration exists even with every constraint removed"]
    singles = [i for i in items if search(_relaxed(problem, [i]), 1)]
    if singles:
        if len(singles) == 1:
            return [f"removed every candidate: {singles[0].text}; without it there are results"]
        return ["these constraints conflict; dropping any one of them gives results:"] + [f"  {i.text}" for i in singles]
    if len(items) <= _MAX_PAIR_ITEMS:
        pairs = [p for p in itertools.combinations(items, 2) if search(_relaxed(problem, p), 1)]
        if pairs:
            return ["no single constraint is to blame; dropping both of any of these pairs gives results:"] + [
                f"  {a.text} and {b.text}" for a, b in pairs]
    return ["no single constraint is to blame; only dropping several of them gives results: "
            + ", ".join(i.text for i in items)]


def constraint_warnings(problem: Problem, model: str, requested_tiers: Sequence[str]) -> list[str]:
    """Items that can never match: layers past the model's last layer, tiers without any profile."""
    out = []
    last_layer = problem.layers.last_layers[-1]
    names = {c.name for t in problem.tiers for c in t.candidates}
    for tier, c in problem.constraints.items():
        for field, bang in (("include_layers", ""), ("exclude_layers", "!")):
            for layer in getattr(c, field):
                if layer > last_layer:
                    hint = (f"; for the resource named {layer} write {bang}name:{layer}" if str(layer) in names else "")
                    out.append(f"{tier} criterion {bang}{layer}: layer {layer} is past {model}'s last layer "
                               f"{last_layer}{hint}")
    for tier in problem.tiers[1:]:
        if tier.name in requested_tiers and not tier.candidates:
            out.append(f"--tiers names {tier.name}, but no {tier.name} resource has a profile of {model}; "
                       f"the {tier.name} tier stays empty")
    return out
