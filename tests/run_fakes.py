"""Fakes for the run side's fast tests: an emulation and node agents in memory (no Docker, no TensorFlow).

The fake agents hand out real `.scission` profile files (hand-built block times), follow the loaded data
path on drive (relays included: a node loaded with an empty range computes nothing), and time each request
as the sum of its blocks plus a fixed transfer per hop, so a fake run produces a folder that `testbed
compare` and `testbed report` read like a real one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml

from emulator.errors import TopologyError
from emulator.probe import ProbeResult
from emulator.topology import load_topology
from scission.profiles import Block, LatencyStats, ModelProfile, Resource, write_model
from testbed.errors import AgentError
from testbed.run.agents import BenchmarkReply, Hop, LoadReply, RequestRecord

MODEL = "mobilenetv2"  # a known model name; the block times here are made up
BLOCK_S = {"device": [0.030, 0.040, 0.050], "gateway": [0.020, 0.025, 0.030],
           "edge": [0.010, 0.012, 0.014], "cloud": [0.004, 0.005, 0.006]}
OUT_BYTES = [40_000, 20_000, 1_000]
INPUT_BYTES = 60_000
HOP_S = 0.01


def write_topology(folder: Path, tiers: tuple[str, ...] = ("device", "edge", "cloud"), name: str = "fake") -> Path:
    nodes = [{"name": t, "tier": t, "cpus": 0.5, "memory": "512m"} for t in tiers]
    links = [{"a": a, "b": b, "bandwidth": "20mbit", "rtt": "10ms"} for a, b in zip(tiers, tiers[1:], strict=False)]
    if len(tiers) == 3:
        links.append({"a": tiers[0], "b": tiers[2], "bandwidth": "10mbit", "rtt": "30ms"})
    doc = {"name": name, "nodes": nodes, "links": links}
    if tiers != ("device", "edge", "cloud"):
        doc["tiers"] = list(tiers)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def write_experiment(folder: Path, topology: Path, **extra) -> Path:
    doc = {"name": "fake-run", "topology": str(topology), "models": [MODEL], "repeats": 1, "requests": 3,
           "rounds": 3, "top_k": 1, "native": True, "request_timeout_s": 5}
    doc.update(extra)
    path = folder / "experiment.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def profile_files(tier: str, node: str, model: str = MODEL, runtime: str = "tf-function") -> dict[str, bytes]:
    """The files `scission benchmark` would write for ``node`` (relative path -> bytes), timed in ``runtime``."""
    with tempfile.TemporaryDirectory() as tmp:
        blocks = tuple(Block(i, i, i, OUT_BYTES[i], LatencyStats.from_samples([t * 0.98, t, t * 1.02]))
                       for i, t in enumerate(BLOCK_S[tier]))
        write_model(tmp, Resource(tier, node), ModelProfile(model, blocks, input_bytes=INPUT_BYTES,
                                                            run={"runtime": runtime, "compile_s": 1.25}), {})
        return {str(p.relative_to(tmp)): p.read_bytes() for p in sorted(Path(tmp).rglob("*")) if p.is_file()}


class FakeEmulation:
    """Probes at the configured figures; records faults; `stopped` nodes fail the requests that reach them."""

    def __init__(self, topology):
        self.topology = topology
        self.stopped: set[str] = set()
        self.cut: set[tuple[str, str]] = set()
        self.is_down = False

    def exec(self, node, argv, *, detach=False):
        raise AssertionError("the fake agents never exec")

    def address(self, node, peer):
        """Node's address on its link to peer, as `Emulation.address` (which has one only where a link is)."""
        link = self.topology.link(node, peer)
        if link is None:
            raise TopologyError(f"no link {node}-{peer} in topology {self.topology.name}")
        return f"10.0.{self.topology.links.index(link)}.{[n.name for n in self.topology.nodes].index(node) + 1}"

    def probe(self):
        out = []
        for link in self.topology.links:
            for a, b in ((link.a, link.b), (link.b, link.a)):
                out.append(ProbeResult(a, b, link.bandwidth_mbps, link.rtt_ms, link.bandwidth_mbps * 0.96,
                                       link.rtt_ms, "fake"))
        return out

    def stop_node(self, node):
        self.stopped.add(node)

    def cut_link(self, a, b):
        self.cut.add((a, b))

    def down(self):
        self.is_down = True


class FakeAgents:
    """Agents in memory. ``calls`` logs every operation; ``fail_drive`` is a set of nodes whose presence on
    the data path makes the drive call itself fail (as when the device's agent cannot be reached)."""

    def __init__(self, emu: FakeEmulation, topology, fail_drive: frozenset[str] = frozenset(),
                 broken_profile: str | None = None):
        self.emu, self.topology = emu, topology
        self.stages: dict[str, tuple[int, int, str | None]] = {}
        self.calls: list[tuple] = []
        self.runtimes: list[tuple[str, str]] = []  # (node, runtime) of every load and speed probe
        self.benchmark_runtimes: list[str] = []
        self.compiled: set[tuple] = set()
        self.fail_drive = fail_drive
        self.broken_profile = broken_profile

    def start(self):
        self.calls.append(("start",))

    def ping(self, node, timeout_s=5.0):
        self.calls.append(("ping", node))

    def load(self, node, model, first_block, last_block, seed, next_node, runtime="tf-function"):
        """As `AgentClient.load`: the next hop is addressed on its link to ``node`` (so it must be a neighbour);
        a range is compiled the first time the node loads it (0.5 s), then found in the cache."""
        address = self.emu.address(next_node, node) if next_node is not None else None
        self.calls.append(("load", node, first_block, last_block, next_node, address))
        self.runtimes.append((node, runtime))
        self.stages[node] = (first_block, last_block, next_node)
        key = (node, first_block, last_block, runtime)
        cached = key in self.compiled
        self.compiled.add(key)
        return LoadReply(runtime, 0.0 if cached else 0.5, cached, None, 0.6)

    def _path(self, device):
        node, path = device, []
        while node is not None:
            path.append(node)
            node = self.stages[node][2]
        return path

    def drive(self, node, requests, timeout_s, stop_on_failure=False):
        path = self._path(node)
        self.calls.append(("drive", tuple(path), requests))
        if self.fail_drive & set(path):
            raise AgentError(f"drive on {node}: agent call failed: connection refused")
        records = []
        for index in range(requests):
            hops, latency, error = [], 0.0, None
            for position, hop in enumerate(path):
                if hop in self.emu.stopped:
                    error = f"request {index} timed out after {timeout_s:g} s"
                    break
                first, last, _ = self.stages[hop]
                tier = self.topology.node(hop).tier
                compute = sum(BLOCK_S[tier][first:last + 1])
                transfer = HOP_S if position else None
                latency += compute + (transfer or 0.0)
                hops.append(Hop(hop, first, last, compute, transfer, 1000))
            if error is None:
                latency += HOP_S * (len(path) > 1)  # the reply back to the device
                records.append(RequestRecord(index, True, latency, None, tuple(hops)))
            else:
                records.append(RequestRecord(index, False, timeout_s, error, tuple(hops)))
                if stop_on_failure:
                    break
        return records

    def benchmark(self, node, model, repeats, tier, runtime="auto"):
        self.calls.append(("benchmark", node))
        self.benchmark_runtimes.append(runtime)
        files = profile_files(tier, node, model)
        if node == self.broken_profile:
            files = {path: b"not a profile" for path in files}
        return BenchmarkReply(files, 1.5, sum(BLOCK_S[tier]))

    def speed(self, node, model, passes, seed, runtime="tf-function"):
        self.calls.append(("speed", node))
        self.runtimes.append((node, runtime))
        return sum(BLOCK_S[self.topology.node(node).tier]) * 1.1


def fake_run(spec, out, agents_class=None, **agent_options):
    """Run ``spec`` against the fakes (``agents_class``: a FakeAgents subclass); returns (results, emulation, agents)."""
    from testbed.run.runner import run_experiment

    made = {}

    def up(topology):
        made["emu"] = FakeEmulation(topology)
        return made["emu"]

    def agents(emu, topology):
        made["agents"] = (agents_class or FakeAgents)(emu, topology, **agent_options)
        return made["agents"]

    try:
        results = run_experiment(spec, out, up=up, agents=agents)
    finally:
        made.setdefault("emu", None)
        made.setdefault("agents", None)
    return results, made["emu"], made["agents"]


def topology_of(path: Path):
    return load_topology(path)
