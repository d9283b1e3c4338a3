"""Measure every link from inside the containers (echo RTT, UDP loss and rate trains, TCP goodput) next to
what was configured."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from emulator import docker_backend
from emulator.errors import EmulatorError, NotRunning
from emulator.state import EmulationState, load_state
from emulator.tc import link_plans

__all__ = ["ProbeResult", "probe"]

log = logging.getLogger(__name__)

AGENT_SOURCE = Path(__file__).with_name("probe_agent.py").read_text()
PIDFILE = "/tmp/emulator-probe-agent.pid"
READY_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ProbeResult:
    """One link direction a -> b; measured_* are None when the direction could not be measured (error says why).

    Three rates, because a lossy link carries more than TCP gets through it:
    - measured_rate_mbps: what the link carries, from a UDP train offered above the configured rate
      (frame bytes from the Ethernet header on, as tc counts them), so it compares with configured_mbps;
    - tcp_goodput_mbps: one TCP flow's payload rate; about 4% under the wire rate from headers
      (1448 payload bytes per 1514-byte frame) and lower again with loss (Reno backs off on every drop);
    - measured_mbps: the same number as tcp_goodput_mbps, kept for callers written before the split.
    measured_loss_pct is the share of a paced train of small datagrams (a quarter of the link rate, so
    no queue overflows) that did not arrive; configured_loss_pct is the topology's loss.
    """

    a: str
    b: str
    configured_mbps: float
    configured_rtt_ms: float
    measured_mbps: float | None
    measured_rtt_ms: float | None
    mechanism: str
    error: str | None = None
    configured_loss_pct: float = 0.0
    measured_loss_pct: float | None = None
    measured_rate_mbps: float | None = None
    tcp_goodput_mbps: float | None = None

    def to_json(self) -> dict:
        return asdict(self)


def _start_agents(name: str, nodes: list[str]) -> None:
    script = f'echo $$ > {PIDFILE}; exec python3 -c "$0" serve > /tmp/emulator-probe-agent.log 2>&1'
    for node in nodes:
        docker_backend.exec_in(
            name, node, ["sh", "-c", f"kill $(cat {PIDFILE}) 2>/dev/null; rm -f {PIDFILE}"]
        )
        docker_backend.exec_in(name, node, ["sh", "-c", script, AGENT_SOURCE], detach=True)
    deadline = time.monotonic() + READY_TIMEOUT_S
    pending = set(nodes)
    while pending and time.monotonic() < deadline:
        for node in list(pending):
            rc, out = docker_backend.exec_in(name, node, ["cat", "/tmp/emulator-probe-agent.log"])
            if "serving" in out:
                pending.discard(node)
        if pending:
            time.sleep(0.05)
    if pending:
        raise EmulatorError(f"probe agent did not start on {', '.join(sorted(pending))}")


def _stop_agents(name: str, nodes: list[str]) -> None:
    for node in nodes:
        try:
            docker_backend.exec_in(
                name, node, ["sh", "-c", f"kill $(cat {PIDFILE}) 2>/dev/null; rm -f {PIDFILE}"]
            )
        except EmulatorError as exc:
            log.debug("stopping probe agent on %s: %s", node, exc)


def _warmup_s(rtt_ms: float, duration_s: float) -> float:
    """Skip slow start: at least 0.5 s or 8 round trips, but keep at least half the transfer to measure."""
    return min(duration_s / 2, max(0.5, 8 * rtt_ms / 1000))


def probe(
    name: str,
    *,
    duration_s: float = 2.0,
    count: int = 10,
    on_progress: Callable[[str], None] = lambda message: None,
    state: EmulationState | None = None,
) -> list[ProbeResult]:
    """Both directions of every link, one after another so transfers never share a CPU or a link."""
    state = state or load_state(name)
    spec = state.spec
    running = {c.node for c in docker_backend.list_nodes(name) if c.status == "running"}
    results: list[ProbeResult] = []
    plans = link_plans(spec, state.mechanism)
    _start_agents(name, sorted(running))
    try:
        for plan, link, link_state in zip(plans, spec.links, state.links, strict=True):
            for src, dst in ((plan.a, plan.b), (plan.b, plan.a)):
                on_progress(f"{src.node} -> {dst.node}")
                base = dict(
                    a=src.node,
                    b=dst.node,
                    configured_mbps=link.bandwidth_mbps,
                    configured_rtt_ms=link.rtt_ms,
                    configured_loss_pct=link.loss_pct,
                    mechanism=link_state.mechanism,
                )
                if src.node not in running or dst.node not in running:
                    stopped = src.node if src.node not in running else dst.node
                    results.append(ProbeResult(**base, measured_mbps=None, measured_rtt_ms=None,
                                               error=f"node {stopped} is stopped"))  # fmt: skip
                    continue
                timeout_s = max(1.0, 3 * link.rtt_ms / 1000 + 0.5)
                opts = {"host": dst.address, "count": count, "duration_s": duration_s, "timeout_s": timeout_s,
                        "warmup_s": _warmup_s(link.rtt_ms, duration_s), "link_mbps": link.bandwidth_mbps}  # fmt: skip
                argv = ["python3", "-c", AGENT_SOURCE, "client", json.dumps(opts)]
                try:
                    rc, out = docker_backend.exec_in(name, src.node, argv)
                except NotRunning as exc:
                    results.append(
                        ProbeResult(**base, measured_mbps=None, measured_rtt_ms=None, error=str(exc))
                    )
                    continue
                try:
                    data = json.loads(out.strip().splitlines()[-1])
                except (ValueError, IndexError):
                    data = {"error": f"probe client exited {rc}: {out.strip()[-200:]}"}
                error = data.get("error")
                if link_state.is_cut and error:
                    error = f"link is cut ({error})"
                results.append(
                    ProbeResult(
                        **base,
                        measured_mbps=data.get("measured_mbps"),
                        measured_rtt_ms=data.get("measured_rtt_ms"),
                        error=error,
                        measured_loss_pct=data.get("measured_loss_pct"),
                        measured_rate_mbps=data.get("measured_rate_mbps"),
                        tcp_goodput_mbps=data.get("measured_mbps"),
                    )
                )
    finally:
        _stop_agents(name, sorted(running))
    return results
