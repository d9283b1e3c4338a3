"""The oracle: scission's best for the true conditions, re-decided at every change, at no cost (its
switches compile for free too).

It is the yardstick (regret is measured against it), not a deployable policy: it reads
``ConditionsChanged``, which only a driver that sets the conditions itself can report.
"""

from __future__ import annotations

from testbed.policies.api import Action, ConditionsChanged, Observation, Policy, Started
from testbed.policies.plans import best_switches

__all__ = ["Oracle"]


class Oracle(Policy):
    free_switches = True  # the yardstick pays nothing, not even compiling a new block range

    def start(self, obs: Started) -> list[Action]:
        return best_switches(self.planner, obs.conditions.bandwidth_mbps, obs.conditions.load)

    def observe(self, obs: Observation) -> list[Action]:
        if isinstance(obs, ConditionsChanged):
            return best_switches(self.planner, obs.conditions.bandwidth_mbps, obs.conditions.load)
        return []
