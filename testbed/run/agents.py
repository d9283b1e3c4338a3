"""A typed client for the node agents: ping, load, drive, benchmark, speed and start, through `Emulation.exec`.

Each call runs ``python -m testbed.agent.call`` inside the node (the agent listens on the node's emulated
addresses and loopback only). That client prints exactly one JSON document on stdout; its stderr is sent
to a log file inside the container (``CALL_LOG``), so the whole output of the exec is the reply and is
parsed as one document. A node that cannot be reached, a reply that is not JSON or an ``ok: false``
reply raises `AgentError`, naming the node and the operation.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from emulator.topology import TopologySpec
from testbed.agent.server import DEFAULT_PORT
from testbed.errors import AgentError, RunFailed, translated

__all__ = ["AGENT_LOG", "CALL_LOG", "AgentClient", "Agents", "BenchmarkReply", "Executor", "Hop", "LoadReply",
           "RecalibrationReply", "RequestRecord"]

log = logging.getLogger(__name__)
AGENT_LOG = "/tmp/testbed-agent.log"
CALL_LOG = "/tmp/testbed-agent-call.log"
START_TIMEOUT_S = 120.0


class Executor(Protocol):
    """What the client needs of an emulation (``emulator.emulation.Emulation`` is one)."""

    def exec(self, node: str, argv: Sequence[str], *, detach: bool = False) -> tuple[int, str]: ...

    def address(self, node: str, peer: str) -> str: ...


@dataclass(frozen=True)
class Hop:
    """One node's part of a request: its blocks, compute time and the one-way transfer into it (seconds)."""

    node: str
    first_block: int | None
    last_block: int | None
    compute_s: float | None
    transfer_in_s: float | None
    bytes_in: int | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Hop:
        return cls(str(data["node"]), data.get("first_block"), data.get("last_block"), data.get("compute_s"),
                   data.get("transfer_in_s"), data.get("bytes_in"))


@dataclass(frozen=True)
class RequestRecord:
    """One request timed end to end by the device's agent; ``request`` counts from 0 within one drive call."""

    request: int
    ok: bool
    latency_s: float | None
    error: str | None = None
    hops: tuple[Hop, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RequestRecord:
        return cls(int(data["request"]), bool(data.get("ok")), data.get("latency_s"), data.get("error"),
                   tuple(Hop.from_json(h) for h in data.get("hops") or ()))

    @property
    def compute_s(self) -> float:
        return sum(h.compute_s or 0.0 for h in self.hops)


@dataclass(frozen=True)
class BenchmarkReply:
    """A node's in-place benchmark: its profile files (path -> bytes), wall time, median chained pass (eager
    block runners) and median whole-model pass (in the runtime the profile was timed in)."""

    files: dict[str, bytes]
    wall_s: float | None
    chained_pass_s: float | None
    whole_model_s: float | None = None


@dataclass(frozen=True)
class LoadReply:
    """What a stage load cost on the node: the runtime really used (a range that cannot convert falls back,
    ``note`` says why) and the compile time paid (0 when the node had compiled that range before)."""

    runtime: str | None
    compile_s: float
    cached: bool = False
    note: str | None = None
    load_s: float | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadReply:
        return cls(data.get("runtime"), float(data.get("compile_s") or 0.0), bool(data.get("cached")),
                   data.get("note"), data.get("load_s"))


@dataclass(frozen=True)
class RecalibrationReply:
    """A node's recalibration passes: whole passes now in ``runtime`` (seconds), their median, the op's wall
    time, compile time and cost apart from build and compile (what a policy is charged)."""

    pass_s: tuple[float, ...]
    median_s: float
    wall_s: float
    runtime: str
    compile_s: float | None = None
    cost_s: float | None = None
    note: str | None = None


class Agents(Protocol):
    """The node agents as the runner uses them (`AgentClient` is the real one; tests pass fakes)."""

    def start(self) -> None: ...

    def ping(self, node: str, timeout_s: float = 5.0) -> None: ...

    def load(self, node: str, model: str, first_block: int, last_block: int, seed: int,
             next_node: str | None, runtime: str = "tf-function") -> LoadReply | None: ...

    def drive(self, node: str, requests: int, timeout_s: float, stop_on_failure: bool = False
              ) -> list[RequestRecord]: ...

    def benchmark(self, node: str, model: str, repeats: int, tier: str, runtime: str = "auto") -> BenchmarkReply: ...

    def speed(self, node: str, model: str, passes: int, seed: int, runtime: str = "tf-function") -> float: ...


def parse_reply(node: str, op: str, code: int, output: str) -> dict[str, Any]:
    """The agent's reply from the whole stdout of one call; raises AgentError for no reply or ok: false."""
    try:
        reply = json.loads(output)
    except ValueError:
        tail = output.strip()[-300:] or "nothing"
        raise AgentError(f"agent on {node} gave no reply to {op} (exit {code}; stdout: {tail}; "
                         f"see {CALL_LOG} in the container)") from None
    if not isinstance(reply, dict):
        raise AgentError(f"agent on {node} answered {op} with {type(reply).__name__}, not a JSON object")
    if not reply.get("ok"):
        raise AgentError(f"{op} on {node}: {reply.get('error') or 'failed without a message'}")
    return reply


def _benchmark_pass_s(summary: Any, model: str, key: str = "chained_pass_median_s") -> float | None:
    """A median pass of the in-place benchmark (``key``), from `scission benchmark --json`'s summary."""
    for entry in summary if isinstance(summary, list) else [summary]:
        if isinstance(entry, dict) and entry.get("model") == model and entry.get(key):
            return float(entry[key])
    return None


class AgentClient:
    """Talks to the agent of every node of ``topology`` through ``emulation.exec``."""

    def __init__(self, emulation: Executor, topology: TopologySpec, port: int = DEFAULT_PORT):
        self.emulation = emulation
        self.topology = topology
        self.port = port

    def call(self, node: str, op: str, fields: dict[str, Any], timeout_s: float = 600.0) -> dict[str, Any]:
        argv = ["python", "-m", "testbed.agent.call", op, json.dumps(fields), "--port", str(self.port),
                "--timeout", str(timeout_s)]
        script = f"exec {shlex.join(argv)} 2>>{CALL_LOG}"
        with translated(AgentError, f"{op} on {node}"):  # a stopped node, an engine that went away
            code, output = self.emulation.exec(node, ["sh", "-c", script])
        return parse_reply(node, op, code, output)

    def start(self) -> None:
        """One detached agent per node, then wait until each answers a ping (RunFailed after 120 s)."""
        for node in self.topology.nodes:
            listen = ["127.0.0.1"] + [self.emulation.address(node.name, peer)
                                      for peer in self.topology.neighbours(node.name)]
            args = " ".join(f"--listen {a}" for a in listen)
            # As many compute threads as the node has CPUs: more would burn its CFS quota in bursts and
            # stall (the benchmark, which the agent spawns, inherits the same setting).
            threads = max(1, math.ceil(node.cpus))
            env = (f"TF_NUM_INTRAOP_THREADS={threads} TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS={threads} "
                   f"TF_CPP_MIN_LOG_LEVEL=2")
            script = (f"exec env {env} python -m testbed.agent --node {shlex.quote(node.name)} {args} "
                      f"--port {self.port} > {AGENT_LOG} 2>&1")
            with translated(RunFailed, f"starting the agent on {node.name}"):
                self.emulation.exec(node.name, ["sh", "-c", script], detach=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        for node in self.topology.nodes:
            while True:
                try:
                    self.ping(node.name)
                    break
                except AgentError as exc:
                    if time.monotonic() > deadline:
                        raise RunFailed(f"the agent on {node.name} did not start: {exc}") from None
                    time.sleep(0.5)

    def ping(self, node: str, timeout_s: float = 5.0) -> None:
        self.call(node, "ping", {}, timeout_s=timeout_s)

    def load(self, node: str, model: str, first_block: int, last_block: int, seed: int,
             next_node: str | None, runtime: str = "tf-function") -> LoadReply:
        """Load blocks first..last (last = first - 1: none) on ``node`` compiled in ``runtime``, forwarding to
        ``next_node``'s agent."""
        fields: dict[str, Any] = {"model": model, "seed": seed, "first_block": first_block, "last_block": last_block,
                                  "runtime": runtime}
        if next_node is not None:
            fields["next"] = f"{self.emulation.address(next_node, node)}:{self.port}"
        return LoadReply.from_json(self.call(node, "load", fields))

    def drive(self, node: str, requests: int, timeout_s: float, stop_on_failure: bool = False
              ) -> list[RequestRecord]:
        reply = self.call(node, "drive", {"requests": requests, "timeout_s": timeout_s,
                                          "stop_on_failure": stop_on_failure},
                          timeout_s=requests * timeout_s + 60)
        return [RequestRecord.from_json(r) for r in reply.get("records", [])]

    def benchmark(self, node: str, model: str, repeats: int, tier: str, runtime: str = "auto") -> BenchmarkReply:
        reply = self.call(node, "benchmark", {"model": model, "repeats": repeats, "tier": tier, "runtime": runtime},
                          timeout_s=3600)
        files = {f["path"]: base64.b64decode(f["b64"]) for f in reply.get("files", [])}
        summary = reply.get("summary")
        return BenchmarkReply(files, reply.get("wall_s"), _benchmark_pass_s(summary, model),
                              _benchmark_pass_s(summary, model, "whole_model_median_s"))

    def speed(self, node: str, model: str, passes: int, seed: int, runtime: str = "tf-function") -> float:
        """Median time of a whole pass of the model, compiled in ``runtime``, on ``node`` now (seconds)."""
        reply = self.call(node, "speed", {"model": model, "passes": passes, "seed": seed, "runtime": runtime},
                          timeout_s=600)
        return float(reply["median_s"])

    def recalibrate(self, node: str, model: str, passes: int = 1, runtime: str = "tf-function",
                    seed: int = 0) -> RecalibrationReply:
        """Whole passes of ``model`` on ``node`` now, as `scission recalibrate` runs them (AgentError when the
        node cannot build the model or the runtime is unknown)."""
        reply = self.call(node, "recalibrate", {"model": model, "passes": passes, "runtime": runtime, "seed": seed},
                          timeout_s=600)
        return RecalibrationReply(tuple(float(s) for s in reply["pass_s"]), float(reply["median_s"]),
                                  float(reply["wall_s"]), str(reply.get("runtime", runtime)), reply.get("compile_s"),
                                  reply.get("cost_s"), reply.get("note"))
