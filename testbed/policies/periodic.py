"""Periodic re-benchmarking: the classic baseline that pays a full benchmark to see the world change.

Every ``period_s`` every node on a device path runs a benchmark of ``overhead_s`` full-speed seconds
(by default the profile's benchmark wall time), sharing the node with requests; with ``refresh:
recalibrate`` a recalibration instead (a few whole passes, priced by ``costs.recalibration_price``). When all have
finished it re-partitions with the conditions the round measured, as they were when it started. A
period whose tick finds the previous round still running is skipped: benchmarks never pile up.
"""

from __future__ import annotations

from testbed.errors import ConfigurationError
from testbed.policies.api import (
    Action,
    BenchmarkDone,
    Every,
    Observation,
    Planner,
    Policy,
    PolicySettings,
    Started,
    Tick,
)
from testbed.policies.plans import best_switches, refresh_action, refresh_mode

__all__ = ["Periodic"]

TIMER = "benchmark"


class Periodic(Policy):
    def __init__(self, settings: PolicySettings, planner: Planner) -> None:
        super().__init__(settings, planner)
        self.refresh = refresh_mode(settings, "benchmark")
        if self.refresh == "none":
            raise ConfigurationError(f"policy {settings.name}: a periodic policy refreshes by benchmark or recalibrate, "
                                     "not 'none'")
        self.round = refresh_action(self.refresh, settings, planner)
        self.is_running = False

    def start(self, obs: Started) -> list[Action]:
        # the profile in hand at t=0 describes the conditions at t=0
        actions: list[Action] = best_switches(self.planner, obs.conditions.bandwidth_mbps, obs.conditions.load)
        return actions + [Every(self.settings.period_s, TIMER)]

    def observe(self, obs: Observation) -> list[Action]:
        if isinstance(obs, Tick) and obs.timer == TIMER:
            if self.is_running:
                return []  # the previous round has not finished: skip this period
            self.is_running = True
            return [self.round()]
        if isinstance(obs, BenchmarkDone):
            self.is_running = False
            return best_switches(self.planner, obs.conditions.bandwidth_mbps, obs.conditions.load)
        return []
