"""Simulator fidelity against closed forms; figures to benchmarks/results/sim_fidelity.{json,md}.

- M/M/1 under processor sharing: mean sojourn 1/(mu - lambda) at several loads (target: within 3%);
- M/D/1 under processor sharing: the PS mean is insensitive to the service distribution, S/(1 - rho);
- a single transfer: RTT/2 + bytes/bandwidth exactly (relative error);
- zero-load latency of scission's best configuration of each of the 18 legacy models, simulated one
  request at a time, against the cost scission's search gives for it (the simulator's own network model).

Run: ``.venv/bin/python benchmarks/sim_fidelity.py [--requests 300000]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from scission.files import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
sys.path.insert(0, str(REPO))


def _world_one_node(service_s: float):
    from emulator.topology import LinkSpec, NodeSpec, TopologySpec
    from scission.profiles import Block, LatencyStats, ModelProfile, Profile, Resource
    from testbed.sim.world import World

    topo = TopologySpec("q", (NodeSpec("device", "device", 1.0, 2**30), NodeSpec("edge", "edge", 1.0, 2**30)),
                        (LinkSpec("device", "edge", 8.0, 100.0),))
    profiles = [
        Profile(Resource(t, n), {"m": ModelProfile("m", (Block(0, 0, 0, 1000, LatencyStats(mean_s=s)),))})
        for t, n, s in (("device", "d", service_s), ("edge", "e", 0.0))
    ]
    return World(topo, profiles, {"device": "device-d", "edge": "edge-e"}, "m", input_bytes=100_000)


def _spec(**fields):
    from testbed.sim.spec import simulation_from_dict

    doc = {"topology": "x", "profiles": "x", "resources": {}, "model": "m", "arrivals": {"kind": "poisson", "rate_per_s": 1},
           "stop": {"requests": 10}, "policies": [{"kind": "device-only"}], "service": "deterministic"}
    doc.update(fields)
    return simulation_from_dict(doc)


def queue_checks(requests: int) -> list[dict]:
    from testbed.sim.runner import run_one

    rows = []
    service_s = 0.1
    for service, rho in (("exponential", 0.3), ("exponential", 0.5), ("exponential", 0.8), ("deterministic", 0.5)):
        lam = rho / service_s
        spec = _spec(arrivals={"kind": "poisson", "rate_per_s": lam}, stop={"requests": requests}, service=service)
        result = run_one(_world_one_node(service_s), spec, spec.policies[0], seed=1)
        theory = service_s / (1 - rho)
        sim = result.summary["mean_s"]
        rows.append({"queue": "M/M/1-PS" if service == "exponential" else "M/D/1-PS", "rho": rho,
                     "requests": requests, "theory_s": theory, "simulated_s": sim,
                     "error_pct": (sim - theory) / theory * 100})
    return rows


def transfer_check() -> dict:
    from testbed.sim.runner import run_one

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.csv"
        path.write_text("time_s\n0\n")
        spec = _spec(arrivals={"kind": "trace", "path": str(path)}, stop={"duration_s": 10}, records=True,
                     policies=[{"kind": "edge-only"}])
        result = run_one(_world_one_node(0.1), spec, spec.policies[0], seed=1)
    expected = 0.100 / 2 + 100_000 / (8.0 * 125_000)
    got = result.records[0][5]
    return {"expected_s": expected, "simulated_s": got, "relative_error": abs(got - expected) / expected}


def zero_load_checks() -> list[dict]:
    from emulator.topology import load_topology
    from scission.profile_folder import load_profiles
    from testbed.sim.runner import run_one
    from testbed.sim.world import World

    topo = load_topology(REPO / "topologies" / "three-tier-wifi.yaml")
    profiles = load_profiles(REPO / "tests" / "data" / "legacy")
    models = sorted({m for p in profiles for m in p.models})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.csv"
        path.write_text("time_s\n0\n")
        for model in models:
            world = World(topo, profiles, {"device": "device-raspi4", "edge": "edge-2500", "cloud": "cloud-6700k(NoGPU)"},
                          model)
            best = world.best("device", {}, {}, 1)[0]
            spec = _spec(arrivals={"kind": "trace", "path": str(path)}, stop={"duration_s": 1000}, records=True,
                         model=model, policies=[{"kind": "oracle"}])
            result = run_one(world, spec, spec.policies[0], seed=1)
            sim = result.records[0][5]
            rows.append({"model": model, "config": world.split_of(best).id, "search_cost_s": best.latency_s,
                         "simulated_s": sim, "relative_error": abs(sim - best.latency_s) / best.latency_s})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300_000)
    args = parser.parse_args()
    t0 = time.perf_counter()
    figures = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": "python benchmarks/sim_fidelity.py " + " ".join(sys.argv[1:]),
        "queues": queue_checks(args.requests),
        "transfer": transfer_check(),
        "zero_load": zero_load_checks(),
    }
    figures["wall_s"] = time.perf_counter() - t0
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / "sim_fidelity.json", json.dumps(figures, indent=2) + "\n")
    lines = ["# Simulator fidelity against closed forms", "",
             f"Measured {figures['date']} with `{figures['command']}`.", "",
             "| queue | rho | requests | theory mean s | simulated mean s | error |", "|---|---|---|---|---|---|"]
    for r in figures["queues"]:
        lines.append(f"| {r['queue']} | {r['rho']} | {r['requests']:,} | {r['theory_s']:.5f} | {r['simulated_s']:.5f} | "
                     f"{r['error_pct']:+.2f}% |")
    t = figures["transfer"]
    lines += ["", f"Single transfer (100 kB, 8 Mbit/s, RTT 100 ms): expected {t['expected_s']:.9f} s, simulated "
              f"{t['simulated_s']:.9f} s, relative error {t['relative_error']:.1e}.", "",
              "Zero-load latency of scission's best configuration (three-tier-wifi, raspi4 / 2500 / 6700k(NoGPU)):", "",
              "| model | configuration | search cost s | simulated s | relative error |", "|---|---|---|---|---|"]
    for r in figures["zero_load"]:
        lines.append(f"| {r['model']} | {r['config']} | {r['search_cost_s']:.6f} | {r['simulated_s']:.6f} | "
                     f"{r['relative_error']:.1e} |")
    atomic_write_text(RESULTS / "sim_fidelity.md", "\n".join(lines) + "\n")
    print((RESULTS / "sim_fidelity.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
