"""Policies: which configuration each device uses, and when it changes; pure, shared by every driver.

Modules: ``api`` (the interface: observations, actions, the ``Planner`` a policy may query, the
``Policy`` base; import its names from there),
``plans`` (helpers several policies share), one module per family: ``static`` (a fixed configuration,
the natives ``<tier>-only``, scission's k-th), ``oracle``, ``periodic``, ``adaptive``. Drivers:
``testbed.sim.driver`` (SimPy); a live controller is another. See docs/policies.md.

Nothing here imports SimPy, the emulator, docker or either world (``testbed.sim``, ``testbed.run``).
"""

from __future__ import annotations

from testbed.errors import ConfigurationError
from testbed.policies.adaptive import Adaptive
from testbed.policies.api import Planner, Policy, PolicySettings
from testbed.policies.oracle import Oracle
from testbed.policies.periodic import Periodic
from testbed.policies.static import Static

__all__ = ["Adaptive", "Oracle", "Periodic", "Static", "make_policy"]

_FAMILIES: dict[str, type[Policy]] = {"static": Static, "oracle": Oracle, "periodic": Periodic, "adaptive": Adaptive}


def make_policy(settings: PolicySettings, planner: Planner) -> Policy:
    """The policy of ``settings.kind`` (static, <tier>-only for the planner's tiers, oracle, periodic, adaptive).

    Raises ConfigurationError for an unknown kind or a configuration no device can run.
    """
    natives = [f"{tier}-only" for tier in planner.tiers]
    if settings.kind in natives:
        return Static(settings, planner)
    family = _FAMILIES.get(settings.kind)
    if family is None:
        raise ConfigurationError(f"unknown policy kind {settings.kind!r}; use one of static, {', '.join(natives)}, "
                                 "oracle, periodic, adaptive")
    return family(settings, planner)
