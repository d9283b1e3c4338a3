"""Runtime actions on a running topology: link shape, cut/restore, node CPU limit, CPU load, stop/start.

Each action changes the live system first, then records the new state; each takes well under 1 s
(tc replace, a SIGHUP to the delay line, one Engine call, or a re-wire of the node's links).
"""

from __future__ import annotations

import logging
import math
import os

from emulator import docker_backend
from emulator.errors import EmulatorError, NotRunning, TopologyError
from emulator.state import EmulationState, LinkState, NodeState, load_state, locked, save_state
from emulator.tc import LinkPlan, link_plans
from emulator.topology import LinkSpec, NodeSpec
from emulator.wiring import alias_node_netns, apply_shape, unalias_node_netns, unwire_link, wire_link

__all__ = [
    "cut_link",
    "restore_link",
    "set_cpus",
    "set_link",
    "start_load",
    "start_node",
    "stop_load",
    "stop_node",
]

log = logging.getLogger(__name__)

LOAD_PIDFILE = "/tmp/emulator-load.pids"
# Busy loops in forked workers; the parent records every pid so stop_load can kill exactly these.
LOAD_SOURCE = """
import os, sys, time
pids = []
for _ in range(int(sys.argv[1])):
    pid = os.fork()
    if pid == 0:
        while True:
            pass
    pids.append(pid)
with open(sys.argv[2], "w") as fh:
    fh.write(" ".join(map(str, pids + [os.getpid()])))
while True:
    time.sleep(3600)
"""


def _find_link(state: EmulationState, a: str, b: str) -> tuple[LinkSpec, LinkPlan, LinkState]:
    link = state.spec.link(a, b)
    if link is None:
        known = ", ".join(f"{lk.a}-{lk.b}" for lk in state.spec.links)
        raise TopologyError(f"no link {a}-{b} in topology {state.name}; links: {known}")
    index = state.spec.links.index(link)
    return link, link_plans(state.spec, state.mechanism)[index], state.links[index]


def _find_node(state: EmulationState, node: str) -> NodeSpec:
    spec = state.spec.node(node)
    if spec is None:
        known = ", ".join(n.name for n in state.spec.nodes)
        raise TopologyError(f"no node {node!r} in topology {state.name}; nodes: {known}")
    return spec


def _is_wired(state: EmulationState, plan: LinkPlan) -> bool:
    """A link with a stopped end has no veths; its new shape is applied when the node starts again."""
    return not (state.node_state(plan.a.node).is_stopped or state.node_state(plan.b.node).is_stopped)


def set_link(
    name: str,
    a: str,
    b: str,
    *,
    bandwidth_mbps: float | None = None,
    rtt_ms: float | None = None,
    jitter_ms: float | None = None,
    loss_pct: float | None = None,
) -> LinkSpec:
    """Change any of a link's rate, rtt, jitter or loss in place; the others keep their values."""
    changes = {
        key: value
        for key, value in dict(
            bandwidth_mbps=bandwidth_mbps, rtt_ms=rtt_ms, jitter_ms=jitter_ms, loss_pct=loss_pct
        ).items()
        if value is not None
    }
    if not changes:
        raise TopologyError("nothing to change: give a bandwidth, rtt, jitter or loss")
    with locked(name):
        state = load_state(name)
        link, plan, link_state = _find_link(state, a, b)
        new_link = link.with_changes(**changes)  # validates (bandwidth > 0, loss 0-100, ...)
        if _is_wired(state, plan):
            apply_shape(
                plan,
                new_link,
                is_cut=link_state.is_cut,
                delayline_pid=link_state.delayline_pid,
                topology=name,
            )
        save_state(
            EmulationState(
                state.spec.with_link(new_link),
                state.image,
                state.mechanism,
                state.links,
                state.nodes,
                state.created_at,
            )
        )
    log.info("link %s-%s of %s now %s", a, b, name, new_link)
    return new_link


def _set_cut(name: str, a: str, b: str, is_cut: bool) -> None:
    with locked(name):
        state = load_state(name)
        link, plan, link_state = _find_link(state, a, b)
        if _is_wired(state, plan):
            apply_shape(plan, link, is_cut=is_cut, delayline_pid=link_state.delayline_pid, topology=name)
        save_state(
            state.with_link_state(
                LinkState(link_state.index, link_state.mechanism, is_cut, link_state.delayline_pid)
            )
        )
    log.info("link %s-%s of %s %s", a, b, name, "cut" if is_cut else "restored")


def cut_link(name: str, a: str, b: str) -> None:
    """Every frame on the link is dropped silently (like a radio out of range); sockets stay open."""
    _set_cut(name, a, b, True)


def restore_link(name: str, a: str, b: str) -> None:
    _set_cut(name, a, b, False)


def set_cpus(name: str, node: str, cpus: float) -> NodeSpec:
    """New CFS quota for the node's container (docker update), effective at the next scheduling period."""
    host_cpus = os.cpu_count() or 1
    if not (math.isfinite(cpus) and 0 < cpus <= host_cpus):
        raise TopologyError(
            f"cpus {cpus:g} for node {node} must be > 0 and at most the {host_cpus} cpus this host has"
        )
    with locked(name):
        state = load_state(name)
        spec = _find_node(state, node)
        docker_backend.update_cpus(name, node, cpus)
        new_spec = NodeSpec(spec.name, spec.tier, cpus, spec.memory_bytes)
        save_state(
            EmulationState(
                state.spec.with_node(new_spec),
                state.image,
                state.mechanism,
                state.links,
                state.nodes,
                state.created_at,
            )
        )
    return new_spec


def start_load(name: str, node: str, workers: int | None = None) -> int:
    """Busy-loop workers inside the node (default: enough to saturate its CPU limit); returns the count."""
    with locked(name):
        state = load_state(name)
        spec = _find_node(state, node)
        workers = workers if workers is not None else max(1, math.ceil(spec.cpus))
        if workers < 1:
            raise TopologyError(f"workers {workers} must be at least 1")
        if state.node_state(node).load_workers:
            _kill_load(name, node)
        docker_backend.exec_in(
            name, node, ["python3", "-c", LOAD_SOURCE, str(workers), LOAD_PIDFILE], detach=True
        )
        save_state(state.with_node_state(NodeState(node, state.node_state(node).is_stopped, workers)))
    return workers


def _kill_load(name: str, node: str) -> None:
    docker_backend.exec_in(
        name,
        node,
        ["sh", "-c", f"[ -f {LOAD_PIDFILE} ] && kill -9 $(cat {LOAD_PIDFILE}); rm -f {LOAD_PIDFILE}; true"],
    )


def stop_load(name: str, node: str) -> None:
    with locked(name):
        state = load_state(name)
        _find_node(state, node)
        node_state = state.node_state(node)
        if node_state.load_workers and not node_state.is_stopped:
            _kill_load(name, node)
        save_state(state.with_node_state(NodeState(node, node_state.is_stopped, 0)))


def stop_node(name: str, node: str) -> None:
    """Kill the container; its links go with its namespace, so the delay lines of those links stop too."""
    with locked(name):
        state = load_state(name)
        _find_node(state, node)
        plans = link_plans(state.spec, state.mechanism)
        docker_backend.stop_node(name, node)
        unalias_node_netns(name, node)
        for plan, link_state in zip(plans, state.links, strict=True):
            if node in (plan.a.node, plan.b.node):
                unwire_link(plan, link_state.delayline_pid)
                state = state.with_link_state(
                    LinkState(link_state.index, link_state.mechanism, link_state.is_cut, None)
                )
        save_state(state.with_node_state(NodeState(node, True, 0)))
    log.info("node %s of %s stopped", node, name)


def start_node(name: str, node: str) -> None:
    """Start the container again and re-wire each of its links whose other end is running."""
    with locked(name):
        state = load_state(name)
        _find_node(state, node)
        if not state.node_state(node).is_stopped and docker_backend.node_info(name, node).status == "running":
            raise EmulatorError(f"node {node} of {name} is already running")
        info = docker_backend.start_node(name, node)
        if info.pid <= 0:
            raise NotRunning(f"node {node} of {name} did not start (status {info.status})")
        alias_node_netns(name, node, info.pid)
        state = state.with_node_state(NodeState(node, False, 0))
        plans = link_plans(state.spec, state.mechanism)
        for plan, link, link_state in zip(plans, state.spec.links, state.links, strict=True):
            if node not in (plan.a.node, plan.b.node):
                continue
            other = plan.b.node if plan.a.node == node else plan.a.node
            if state.node_state(other).is_stopped:
                continue
            unwire_link(plan, link_state.delayline_pid)  # leftovers of the old namespace, if any
            pid = wire_link(name, plan, link, is_cut=link_state.is_cut, seed=plan.index)
            state = state.with_link_state(
                LinkState(link_state.index, link_state.mechanism, link_state.is_cut, pid)
            )
        save_state(state)
    log.info("node %s of %s started", node, name)
