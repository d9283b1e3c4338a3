"""Simulator speed and memory: simulated requests per second of wall time, and memory vs request count.

Workload: experiments/sim-speed.yaml (three tiers, one static configuration using all three, Poisson
arrivals, records off). Figures written to benchmarks/results/sim_speed.{json,md}:

- ``requests_per_s``: best and median over repeats, wall clock and CPU time of this process (the host is
  shared, so the CPU-time figure is the steadier one), with the load average when measured;
- ``naive``: the same hop plan written the obvious way (a SimPy process per request, a FCFS
  ``simpy.Resource`` per node and link, one numpy draw per block time) for reference;
- ``memory``: peak traced Python memory of the run (tracemalloc, fresh process each) for growing request
  counts with records off: flat means it does not grow with the number of requests.

Run: ``.venv/bin/python benchmarks/sim_speed.py [--requests 200000] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from scission.files import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "experiments" / "sim-speed.yaml"
RESULTS = REPO / "benchmarks" / "results"


def _spec(requests: int, records: bool = False):
    from testbed.sim.spec import load_simulation

    return load_simulation(SPEC).with_stop(requests=requests).model_copy(update={"records": records})


def measure_speed(requests: int, repeats: int) -> dict:
    from testbed.sim.runner import run_one
    from testbed.sim.world import load_world

    spec = _spec(requests)
    world = load_world(spec)
    walls, cpus = [], []
    for i in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        result = run_one(world, spec, spec.policies[0], seed=i + 1)
        w1, c1 = time.perf_counter(), time.process_time()
        assert result.summary["finished"] == requests
        walls.append(requests / (w1 - w0))
        cpus.append(requests / (c1 - c0))
    return {
        "requests": requests,
        "repeats": repeats,
        "wall_requests_per_s_best": max(walls),
        "wall_requests_per_s_median": statistics.median(walls),
        "cpu_requests_per_s_best": max(cpus),
        "cpu_requests_per_s_median": statistics.median(cpus),
        "mean_latency_s": result.summary["mean_s"],
        "rho_max": result.summary["rho_max"],
    }


def measure_naive(requests: int) -> dict:
    """The obvious SimPy model of the same plan, for reference (FCFS resources, a process per request)."""
    import numpy as np
    import simpy

    from scission.units import mbps_to_bytes_per_s
    from testbed.sim.world import load_world

    spec = _spec(requests)
    world = load_world(spec)
    plan = world.plan("device", world.parse_split(spec.policies[0].configuration))
    rng = np.random.default_rng(1)
    env = simpy.Environment()
    resources = {}
    stages = []
    for st in plan.stages:
        if st.kind == "compute":
            blocks = world.nodes[st.node].profile.blocks[st.first_block:st.last_block + 1]
            mean = sum(b.latency.mean_s for b in blocks)
            key = st.node
            stages.append((key, mean, 0.0))
        else:
            lk = world.topology.link(*st.link)
            key = st.link
            stages.append((key, st.size_bytes / mbps_to_bytes_per_s(lk.bandwidth_mbps), lk.rtt_ms / 2000))
        resources.setdefault(key, simpy.Resource(env, capacity=1))
    sigma = (np.log1p(spec.service_cv**2)) ** 0.5
    latencies = []

    def request(env):
        t0 = env.now
        for key, mean, delay in stages:
            with resources[key].request() as req:
                yield req
                work = mean if delay else float(rng.lognormal(np.log(mean) - sigma**2 / 2, sigma))
                yield env.timeout(work)
            if delay:
                yield env.timeout(delay)
        latencies.append(env.now - t0)

    def source(env):
        for _ in range(requests):
            yield env.timeout(float(rng.exponential(1 / spec.arrivals.rate_per_s)))
            env.process(request(env))

    env.process(source(env))
    w0 = time.perf_counter()
    env.run()
    wall = time.perf_counter() - w0
    return {"requests": requests, "wall_requests_per_s": requests / wall, "mean_latency_s": sum(latencies) / len(latencies)}


def child_memory(requests: int) -> None:
    import tracemalloc

    from testbed.sim.runner import run_one
    from testbed.sim.world import load_world

    spec = _spec(requests)
    world = load_world(spec)
    run_one(world, spec, spec.policies[0], seed=1)  # warm caches (plans, samplers) outside the trace
    tracemalloc.start()
    result = run_one(world, spec, spec.policies[0], seed=2)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(json.dumps({"requests": requests, "peak_traced_bytes": peak, "finished": result.summary["finished"]}))


def measure_memory(counts: list[int]) -> list[dict]:
    rows = []
    for n in counts:
        out = subprocess.run([sys.executable, __file__, "--child-memory", str(n)], capture_output=True, text=True,
                             cwd=REPO, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def write_results(figures: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / "sim_speed.json", json.dumps(figures, indent=2) + "\n")
    s, n, mem = figures["speed"], figures["naive"], figures["memory"]
    lines = [
        "# Simulator speed and memory",
        "",
        f"Measured {figures['date']} on {figures['host']} (load average {figures['load_average']}), "
        f"`{figures['command']}`. Workload: `experiments/sim-speed.yaml` (three tiers, static configuration "
        "on all three, Poisson arrivals, records off). Target: >= 50,000 simulated requests/s of wall time.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| requests per run | {s['requests']:,} |",
        f"| wall requests/s, best of {s['repeats']} | {s['wall_requests_per_s_best']:,.0f} |",
        f"| wall requests/s, median | {s['wall_requests_per_s_median']:,.0f} |",
        f"| CPU requests/s, best | {s['cpu_requests_per_s_best']:,.0f} |",
        f"| CPU requests/s, median | {s['cpu_requests_per_s_median']:,.0f} |",
        f"| naive SimPy (process per request, FCFS Resources), wall requests/s | {n['wall_requests_per_s']:,.0f} |",
        "",
        "Memory with records off (peak traced Python memory during one run, fresh process each):",
        "",
        "| requests | peak traced memory |",
        "|---|---|",
    ]
    for row in mem:
        lines.append(f"| {row['requests']:,} | {row['peak_traced_bytes'] / 1e6:.2f} MB |")
    atomic_write_text(RESULTS / "sim_speed.md", "\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--memory-counts", default="25000,100000,400000")
    parser.add_argument("--child-memory", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_memory:
        child_memory(args.child_memory)
        return 0
    sys.path.insert(0, str(REPO))
    figures = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "host": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}",
        "load_average": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
        "command": "python benchmarks/sim_speed.py " + " ".join(sys.argv[1:]),
        "speed": measure_speed(args.requests, args.repeats),
        "naive": measure_naive(min(args.requests, 100_000)),
        "memory": measure_memory([int(x) for x in args.memory_counts.split(",")]),
    }
    write_results(figures)
    print((RESULTS / "sim_speed.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
