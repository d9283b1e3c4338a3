"""Two drivers, one policy: the SimPy driver and a toy loop get the same decisions from the same policy code.

This is the proof the live controller relies on: a driver that is not the simulator (here a plain
Python event loop with a fake planner, no SimPy, no simulator types) drives the unchanged policy
objects, and the decisions match what the simulator's driver gets on the equivalent scenario.
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest
from conftest import REPO
from test_policies_fakes import FakePlanner, ToyDriver, dip_at
from test_sim_helpers import arrivals_csv, spec, three_tier

from testbed.policies import make_policy
from testbed.policies.api import Policy, Started
from testbed.sim.conditions import build_trace
from testbed.sim.driver import SimDriver, WorldPlanner
from testbed.sim.engine import Simulation

ADAPTIVE = {"kind": "adaptive", "probe_period_s": 1, "probe_bytes": 1000, "threshold_pct": 30, "confirm": 2,
            "cooldown_s": 0, "alpha": 1.0}
SCENARIOS = [  # (policy, dip start, dip end)
    ({"kind": "oracle"}, 10, 20),
    ({"kind": "static", "rank": 2}, 10, 20),
    ({"kind": "edge-only"}, 10, 20),
    ({"kind": "periodic", "period_s": 5, "overhead_s": 1.0}, 7, 22),
    (ADAPTIVE, 10.5, 40),
    (ADAPTIVE, 10.5, 11.5),
    ({**ADAPTIVE, "alpha": 0.6, "confirm": 1, "cooldown_s": 3}, 4.5, 17.5),
    # issue 13: recalibrating instead of re-benchmarking, decided alike under both drivers
    ({"kind": "periodic", "period_s": 5, "overhead_s": 0.3, "refresh": "recalibrate"}, 7, 22),
    ({**ADAPTIVE, "refresh": "recalibrate", "overhead_s": 0.2}, 10.5, 40),
]


class Recording(Policy):
    """Wraps a policy and keeps every (observation, actions) pair it was given and returned."""

    def __init__(self, inner: Policy) -> None:
        super().__init__(inner.settings, inner.planner)
        self.inner = inner
        self.log: list = []

    def start(self, obs):
        return self._keep(obs, self.inner.start(obs))

    def observe(self, obs):
        return self._keep(obs, self.inner.observe(obs))

    def _keep(self, obs, actions):
        self.log.append((obs, actions))
        return actions


def simulated(tmp_path, policy: dict, start_s: float, end_s: float):
    """The scenario of test_sim_policies: one request at 29 s, device-edge dips to 0.5 Mbit/s over [start, end)."""
    world = three_tier(device_s=1.0, edge_s=0.1, cloud_s=0.05, bw_mbps=8.0, rtt_ms=100.0, input_bytes=100_000)
    conditions = [{"kind": "step", "link": "device>edge", "bandwidth_mbps": [[0, 8.0], [start_s, 0.5], [end_s, 8.0]]}]
    s = spec(arrivals={"kind": "trace", "path": arrivals_csv(tmp_path, [29.0])}, stop={"duration_s": 30},
             policies=[policy], conditions=conditions)
    recording = Recording(make_policy(s.policies[0], WorldPlanner(world)))
    sim = Simulation(world, s, SimDriver(recording, world), 1, [build_trace(c) for c in s.conditions], record=True)
    sim.run()
    return s.policies[0], sim, recording


@pytest.mark.parametrize("policy, start_s, end_s", SCENARIOS)
def test_a_toy_driver_gets_the_decisions_the_simulator_gets(tmp_path, policy, start_s, end_s):
    settings, sim, _ = simulated(tmp_path, policy, start_s, end_s)
    toy = ToyDriver(make_policy(settings, FakePlanner()), dip_at(start_s, end_s), changes_s=(start_s, end_s))
    assert toy.run() == [(round(t, 6), d, c) for t, d, c in sim.split_log]


@pytest.mark.parametrize("policy, start_s, end_s", SCENARIOS)
def test_the_simulators_observations_replayed_by_a_plain_loop_give_the_same_actions(tmp_path, policy, start_s, end_s):
    settings, _, recording = simulated(tmp_path, policy, start_s, end_s)
    fresh = make_policy(settings, FakePlanner())
    replayed = [fresh.start(obs) if isinstance(obs, Started) else fresh.observe(obs) for obs, _ in recording.log]
    assert replayed == [actions for _, actions in recording.log]
    assert any(actions for actions in replayed)


def test_the_toy_driver_alone_gives_the_timeline_test_sim_policies_pins():
    # probes at 11 s and 12 s both see 0.5 Mbit/s; the second round ends when its 1000-byte probe has
    # crossed the slow link: 12 + 1000 / 62,500 = 12.016 s
    settings = spec(policies=[ADAPTIVE]).policies[0]
    toy = ToyDriver(make_policy(settings, FakePlanner()), dip_at(10.5, 40))
    assert toy.run() == [(0.0, "device", "edge:0-0"), (12.016, "device", "device:0-0")]


# --- the package stays pure -----------------------------------------------------------------------

FORBIDDEN = ("simpy", "emulator", "docker", "testbed.sim", "testbed.run", "tensorflow", "matplotlib", "pandas")


def test_the_policies_package_imports_nothing_of_either_world():
    for path in (REPO / "testbed" / "policies").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            for name in names:
                assert not any(name == f or name.startswith(f + ".") for f in FORBIDDEN), f"{path.name}: {name}"


def test_importing_the_policies_loads_no_simulator_emulator_or_heavy_library():
    code = ("import sys, testbed.policies; "
            f"print(sorted(m for m in sys.modules if any(m == f or m.startswith(f + '.') for f in {FORBIDDEN!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_policies_all_is_complete():
    import testbed.policies
    import testbed.policies.api

    for module in (testbed.policies, testbed.policies.api):
        for symbol in module.__all__:
            assert hasattr(module, symbol), symbol
