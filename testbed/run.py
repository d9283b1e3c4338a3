"""`testbed run`: bring a topology up, benchmark every node in place, probe, predict, measure, bring it down.

Steps, in order: up -> start agents -> benchmark (scission benchmark inside each container, under its
CPU limit) -> probe links -> predict with scission's search on the measured RTT and bandwidth -> deploy
each configuration (top k + native) and time N requests end to end -> down (always, even after a
failure or Ctrl-C). Results land in the output folder as they are produced, so a failed run keeps them.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.topology import TopologySpec, load_topology
from scission.network import NetworkLink, NetworkTable
from scission.partition import build_problem
from scission.problem import Configuration, evaluate
from scission.profile_folder import load_profiles
from scission.search import search
from testbed.errors import RunFailed
from testbed.experiment import ExperimentSpec
from testbed.results import RunResults

log = logging.getLogger(__name__)
AGENT_PORT = 7200
TIERS = ("device", "edge", "cloud")
StepFn = Callable[[str, str], None]


@dataclass
class Measured:
    config_id: str
    config: Configuration
    label: str  # e.g. "top-1", "device-only"
    records: list[dict] = field(default_factory=list)


def config_id(config: Configuration) -> str:
    """'device:0-9,edge:10-65' (inclusive block ranges by tier), the simulator's configuration syntax."""
    parts = [f"{p.tier}:{p.first_block}-{p.last_block}" for p in config.placements if p.runs]
    return ",".join(parts)


class _Nodes:
    """Talks to the agents through `docker exec` of a small client inside each container."""

    def __init__(self, emu, topology: TopologySpec):
        self.emu = emu
        self.topology = topology

    def call(self, node: str, op: str, fields: dict, timeout_s: float = 600.0) -> dict:
        argv = ["python", "-m", "testbed.agent.call", op, json.dumps(fields), "--port", str(AGENT_PORT),
                "--timeout", str(timeout_s)]
        from emulator.errors import EmulatorError

        try:
            code, output = self.emu.exec(node, argv)
        except EmulatorError as exc:  # a stopped node: the caller records it as that configuration's failure
            return {"ok": False, "error": f"node {node}: {exc}"}
        for line in reversed(output.strip().splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except ValueError:
                    continue
        return {"ok": False, "error": f"agent on {node} gave no answer (exit {code}): {output.strip()[-300:]}"}

    def start_agents(self) -> None:
        for node in self.topology.nodes:
            listen = ["127.0.0.1"] + [self.emu.address(node.name, peer) for peer in self.topology.neighbours(node.name)]
            args = " ".join(f"--listen {a}" for a in listen)
            # As many compute threads as the node has CPUs: more would burn its CFS quota in bursts and
            # stall (the benchmark, which the agent spawns, inherits the same setting).
            threads = max(1, math.ceil(node.cpus))
            env = (f"TF_NUM_INTRAOP_THREADS={threads} TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS={threads} "
                   f"TF_CPP_MIN_LOG_LEVEL=2")
            script = (f"exec env {env} python -m testbed.agent --node {shlex.quote(node.name)} {args} "
                      f"--port {AGENT_PORT} > /tmp/testbed-agent.log 2>&1")
            self._detached(node.name, script)
        deadline = time.monotonic() + 120
        for node in self.topology.nodes:
            while True:
                reply = self.call(node.name, "ping", {}, timeout_s=5)
                if reply.get("ok"):
                    break
                if time.monotonic() > deadline:
                    raise RunFailed(f"the agent on {node.name} did not start: {reply.get('error')}")
                time.sleep(0.5)

    def _detached(self, node: str, script: str) -> None:
        from emulator import docker_backend

        docker_backend.exec_in(self.emu.name, node, ["sh", "-c", script], detach=True)


def _choose_device(topology: TopologySpec, wanted: str | None) -> str:
    devices = [n.name for n in topology.nodes if n.tier == "device"]
    if not devices:
        raise RunFailed(f"topology {topology.name} has no node of tier device")
    if wanted is not None:
        if wanted not in devices:
            raise RunFailed(f"device {wanted!r} is not a device node of {topology.name} ({', '.join(devices)})")
        return wanted
    return devices[0]


def _network_from_probes(probes: list) -> NetworkTable:
    links = []
    for p in probes:
        if p.measured_mbps is None or p.measured_rtt_ms is None:
            continue
        links.append(NetworkLink(p.a, p.b, p.measured_rtt_ms, p.measured_mbps))
    return NetworkTable(links)


def predict(profiles, network: NetworkTable, model: str, device: str, top_k: int, native: bool
            ) -> list[tuple[str, Configuration]]:
    """Top k by the search plus the native configurations, each once, labelled."""
    mine = [p for p in profiles if p.resource.tier != "device" or p.resource.name == device]
    input_bytes = next(p.models[model].input_bytes for p in mine if model in p.models)
    problem = build_problem(mine, network, model, TIERS, input_bytes=input_bytes or 0)
    chosen: list[tuple[str, Configuration]] = [(f"top-{i}", c) for i, c in enumerate(search(problem, top_k), 1)]
    if native:
        n = problem.block_count
        edge = problem.tiers[1].candidates[0].name if problem.tiers[1].candidates else None
        cloud = problem.tiers[2].candidates[0].name if problem.tiers[2].candidates else None
        natives = [("device-only", [device, None, None], [n, 0, 0])]
        if edge:
            natives.append(("edge-only", [device, edge, None], [0, n, 0]))
        if cloud:
            natives.append(("cloud-only", [device, None, cloud], [0, 0, n]))
        for label, resources, counts in natives:
            config = evaluate(problem, resources, counts)
            if all(config.key != c.key for _, c in chosen):
                chosen.append((label, config))
    return chosen


def _deploy(nodes: _Nodes, emu, model: str, config: Configuration, seed: int) -> list[str]:
    """Load each node's stage, downstream first; returns the data path's nodes."""
    path = [p for i, p in enumerate(config.placements) if i == 0 or p.runs]
    for index in range(len(path) - 1, -1, -1):
        p = path[index]
        fields: dict[str, Any] = {"model": model, "seed": seed,
                                  "first_block": p.first_block if p.runs else 0,
                                  "last_block": p.last_block if p.runs else -1}
        if index + 1 < len(path):
            nxt = path[index + 1].resource
            fields["next"] = f"{emu.address(nxt, p.resource)}:{AGENT_PORT}"
        reply = nodes.call(p.resource, "load", fields)
        if not reply.get("ok"):
            raise RunFailed(f"deploying {config_id(config)} on {p.resource}: {reply.get('error')}")
    return [p.resource for p in path]


def _benchmark_pass_s(summary: Any, model: str) -> float | None:
    """Median chained pass of the in-place benchmark, from `scission benchmark --json`'s summary."""
    for entry in summary if isinstance(summary, list) else [summary]:
        if isinstance(entry, dict) and entry.get("model") == model and entry.get("chained_pass_median_s"):
            return float(entry["chained_pass_median_s"])
    return None


def _probe_speed(nodes: _Nodes, node: str, model: str, spec: ExperimentSpec) -> float | None:
    """Median chained-pass time of the whole model on ``node`` now (None when the probe fails)."""
    reply = nodes.call(node, "speed", {"model": model, "passes": spec.speed_probe_passes, "seed": spec.seed},
                       timeout_s=600)
    return float(reply["median_s"]) if reply.get("ok") else None


def _probe_nodes(nodes: _Nodes, results: RunResults, spec: ExperimentSpec, model: str, config: Configuration,
                 cid: str, label: str, round_index: int) -> None:
    """Probe the speed of every node that computes in ``config``, next to this round's requests."""
    rows = []
    for p in config.placements:
        if p.runs and p.resource is not None:
            rows.append({"node": p.resource, "probe_s": _probe_speed(nodes, p.resource, model, spec)})
    results.add_speeds(model, cid, label, round_index, rows)


def _apply_fault(emu, fault) -> str:
    if fault.action == "stop-node":
        emu.stop_node(fault.node)
        return f"stopped node {fault.node}"
    emu.cut_link(*fault.link)
    return f"cut link {fault.link[0]}-{fault.link[1]}"


def _split_requests(total: int, rounds: int) -> list[int]:
    rounds = max(1, min(rounds, total))
    return [total // rounds + (1 if i < total % rounds else 0) for i in range(rounds)]


def _measure(spec: ExperimentSpec, results: RunResults, nodes: _Nodes, emu, model: str, device: str,
             chosen: list[tuple[str, Configuration]], step: StepFn) -> bool:
    """Time every configuration in interleaved rounds (deploy, warm up, a few requests each), so slow drift
    on the host falls on all configurations alike. Returns True when the run must stop (on_failure: stop)."""
    done = {config_id(c): 0 for _, c in chosen}
    applied: set[int] = set()
    failed: set[str] = set()
    for round_index, per_round in enumerate(_split_requests(spec.requests, spec.rounds), start=1):
        for position, (label, config) in enumerate(chosen, start=1):
            cid = config_id(config)
            if cid in failed:
                continue
            step("measure", f"{model} round {round_index}/{spec.rounds} {label} {cid}")
            try:
                path = _deploy(nodes, emu, model, config, spec.seed)
            except RunFailed as exc:
                results.add_failure(model, cid, str(exc))
                failed.add(cid)
                if spec.on_failure == "stop":
                    return True
                continue
            if spec.warmup_requests and round_index == 1:  # later rounds find kernels and connections warm
                nodes.call(device, "drive", {"requests": spec.warmup_requests, "timeout_s": spec.request_timeout_s},
                           timeout_s=spec.warmup_requests * spec.request_timeout_s + 60)
            if spec.speed_probe_passes:
                _probe_nodes(nodes, results, spec, model, config, cid, label, round_index)
            # Segment boundaries: this round's requests, cut where a scripted fault is due.
            bounds = [done[cid], done[cid] + per_round]
            for index, fault in enumerate(spec.faults):
                if fault.config in (position, label) and index not in applied and bounds[0] <= fault.after_requests < bounds[1]:
                    bounds.insert(-1, fault.after_requests)
            bounds = sorted(set(bounds))
            for lo, hi in zip(bounds, bounds[1:], strict=False):
                for index, fault in enumerate(spec.faults):
                    if fault.config in (position, label) and index not in applied and fault.after_requests <= lo:
                        applied.add(index)
                        results.add_event(model, cid, _apply_fault(emu, fault))
                reply = nodes.call(device, "drive", {"requests": hi - lo, "timeout_s": spec.request_timeout_s,
                                                     "stop_on_failure": spec.on_failure == "stop"},
                                   timeout_s=(hi - lo) * spec.request_timeout_s + 60)
                if not reply.get("ok"):
                    raise RunFailed(f"driving {cid} on {device}: {reply.get('error')}")
                records = reply["records"]
                for r in records:
                    r["request"] = lo + r["request"] + 1
                done[cid] = lo + len(records)
                results.add_requests(model, cid, label, path, records)
                if any(not r["ok"] for r in records) and spec.on_failure == "stop":
                    return True
    return False


def run_experiment(spec: ExperimentSpec, out_dir: str | Path, on_step: StepFn | None = None,
                   image: str | None = None) -> RunResults:
    """Run every step; the topology is always brought down. Returns what was measured."""
    from emulator.emulation import Emulation

    step = on_step or (lambda s, detail: None)
    topology = load_topology(spec.topology_path)
    device = _choose_device(topology, spec.device)
    results = RunResults(Path(out_dir), spec, topology, device)
    emu = None
    try:
        step("up", f"topology {topology.name}")
        kwargs = {"image": image} if image else {}
        emu = Emulation.up(topology, **kwargs)
        nodes = _Nodes(emu, topology)
        step("agents", "starting one agent per node")
        nodes.start_agents()
        for model in spec.models:
            for node in topology.nodes:
                step("benchmark", f"{model} on {node.name} ({node.cpus:g} cpus)")
                reply = nodes.call(node.name, "benchmark", {"model": model, "repeats": spec.repeats,
                                                            "tier": node.tier}, timeout_s=3600)
                if not reply.get("ok"):
                    raise RunFailed(f"benchmark of {model} on {node.name}: {reply.get('error')}")
                results.add_profile(model, {f["path"]: base64.b64decode(f["b64"]) for f in reply["files"]},
                                    node.name, reply.get("wall_s"))
                if spec.speed_probe_passes:
                    # The reference is the benchmark's own chained passes (what the profile says); a probe right
                    # after it shows how the agent's passes compare at that moment.
                    results.set_speed_reference(model, node.name, _benchmark_pass_s(reply.get("summary"), model),
                                                _probe_speed(nodes, node.name, model, spec))
        step("probe", "echo RTT and bulk throughput on every link direction")
        probes = emu.probe()
        results.set_probes(probes)
        network = _network_from_probes(probes)
        for model in spec.models:
            step("predict", model)
            chosen = predict(load_profiles(results.profile_dir(model)), network, model, device, spec.top_k,
                             spec.native)
            results.set_configs(model, chosen)
            stopped = _measure(spec, results, nodes, emu, model, device, chosen, step)
            if stopped:
                break
    except KeyboardInterrupt:
        results.note("interrupted by the user")
        raise
    except Exception as exc:
        results.note(f"run failed: {exc}")
        raise
    finally:
        if emu is not None:
            step("down", f"topology {topology.name}")
            try:
                emu.down()
            except Exception as exc:  # never mask the run's own error; say it instead
                log.error("bringing %s down failed: %s", topology.name, exc)
        results.finish()
    return results
