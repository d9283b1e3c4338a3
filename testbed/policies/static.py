"""Static policies: one configuration per device for the whole run (a named one, a native, or scission's k-th)."""

from __future__ import annotations

from testbed.errors import ConfigurationError
from testbed.policies.api import Action, Planner, Policy, PolicySettings, Started, Switch

__all__ = ["Static"]


class Static(Policy):
    """``<tier>-only`` and ``static`` with a ``configuration`` fix one id for every device; ``static`` with
    ``rank`` takes, per device, scission's rank-th configuration under the conditions at the start.
    """

    def __init__(self, settings: PolicySettings, planner: Planner) -> None:
        super().__init__(settings, planner)
        named = settings.kind if settings.kind != "static" else settings.configuration
        # checked now, so that a typo fails before the run rather than at its start
        self.config_id = planner.validate(named) if named is not None else None

    def start(self, obs: Started) -> list[Action]:
        if self.config_id is not None:
            return [Switch(device, self.config_id) for device in self.planner.devices]
        rank = self.settings.rank
        out: list[Action] = []
        for device in self.planner.devices:
            ranked = self.planner.best(device, obs.conditions.bandwidth_mbps, obs.conditions.load, rank)
            if len(ranked) < rank:
                raise ConfigurationError(
                    f"policy {self.name}: rank {rank} asked, but scission found only {len(ranked)} configurations"
                )
            out.append(Switch(device, ranked[rank - 1]))
        return out
