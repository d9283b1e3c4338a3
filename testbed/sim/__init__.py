"""The simulator: a SimPy model that replays scission profiles on a topology under changing conditions.

Modules: ``spec`` (simulation files), ``world`` (topology + profiles -> splits and hop plans over the
topology's ordered tiers), ``conditions`` (bandwidth/load traces), ``kernel`` (the only SimPy import and
the fast path on its internals), ``streams`` (seeded random streams), ``station`` (exact processor
sharing), ``arrivals``, ``engine`` (requests, stages, conditions; the primitive API policies drive),
``policies``, ``stats`` (streaming aggregates), ``runner`` (policies x seeds), ``output`` (files and
plots), ``cli`` (`testbed simulate`), ``compare`` (simulated vs predicted vs measured for a run folder).
Importing this package does not import SimPy, pandas or matplotlib.
"""

from testbed.sim.spec import SimulationSpec, load_simulation, simulation_from_dict
from testbed.sim.world import Split, World

__all__ = [
    "SimulationSpec",
    "Split",
    "World",
    "load_simulation",
    "run_simulation",
    "simulation_from_dict",
]


def run_simulation(spec, world=None, progress=None):
    """Run every policy under every seed (see ``testbed.sim.runner.run_simulation``)."""
    from testbed.sim.runner import run_simulation as _run

    return _run(spec, world, progress)
