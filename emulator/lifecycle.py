"""Bring a topology up and down: containers, links and state; cleanup by label so nothing is left behind."""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass

from emulator import docker_backend
from emulator.capabilities import Capabilities, choose_mechanism, detect
from emulator.errors import AlreadyRunning, EmulatorError, NotRunning
from emulator.image import build_node_image
from emulator.runner import try_run
from emulator.state import (
    EmulationState,
    LinkState,
    NodeState,
    load_state,
    locked,
    remove_state_dir,
    save_state,
    stale_dir_names,
    state_dir,
    state_names,
)
from emulator.tc import LinkPlan, link_plans, render_shape, render_wiring
from emulator.topology import TopologySpec, check_fits_host
from emulator.wiring import (
    NETNS_DIR,
    alias_node_netns,
    delayline_pids,
    delayline_topologies,
    find_netns,
    kill_pids,
    unalias_node_netns,
    wire_link,
)

__all__ = [
    "Leftovers",
    "NodeStatus",
    "LinkStatus",
    "TopologyStatus",
    "down",
    "dry_run_commands",
    "running_names",
    "status",
    "up",
]

log = logging.getLogger(__name__)


def running_names() -> list[str]:
    """Names with any trace on this host: a state directory, a labelled container, a namespace or a delay line."""
    names = set(state_names()) | set(stale_dir_names())
    names |= {c.topology for c in docker_backend.list_nodes()}
    names |= {n.split(".")[1] for n in find_netns() if n.count(".") >= 2}
    names |= delayline_topologies()
    return sorted(names)


def check_can_start(spec: TopologySpec, caps: Capabilities | None = None) -> None:
    """Everything refusable is refused here, before any container or namespace exists."""
    check_fits_host(spec, (caps.host_cpus if caps else None) or os.cpu_count())
    if spec.name in state_names() or docker_backend.list_nodes(spec.name) or find_netns(spec.name):
        raise AlreadyRunning(
            f"topology {spec.name!r} is already running; stop it with `emulator down {spec.name}` or rename it"
        )


def dry_run_commands(spec: TopologySpec, mechanism: str = "auto") -> list[list[str]]:
    """The host commands `up` would run for the links (containers come from the Docker API, not argv)."""
    caps = detect()
    plans = link_plans(spec, choose_mechanism(mechanism, caps))
    commands: list[list[str]] = []
    for plan, link in zip(plans, spec.links, strict=True):
        commands += render_wiring(plan) + render_shape(plan, link)
    return commands


def up(
    spec: TopologySpec,
    *,
    mechanism: str = "auto",
    image: str | None = None,
    seed: int = 0,
    on_progress: Callable[[str], None] = lambda message: None,
) -> EmulationState:
    """Start every node and link; on any failure or Ctrl-C everything created so far is removed."""
    caps = detect()
    chosen = choose_mechanism(mechanism, caps)
    check_can_start(spec, caps)
    plans = link_plans(spec, chosen)
    state_dir(spec.name).mkdir(parents=True, exist_ok=True)
    try:
        with locked(spec.name, create=True):
            if image is None:
                on_progress("node image")
                image = build_node_image(on_line=lambda line: log.debug("build: %s", line))
            hosts = _hosts(spec, plans)
            for node in spec.nodes:
                on_progress(f"node {node.name}")
                info = docker_backend.create_node(
                    spec.name, node.name, image, node.cpus, node.memory_bytes, hosts[node.name]
                )
                alias_node_netns(spec.name, node.name, info.pid)
            link_states = []
            for plan, link in zip(plans, spec.links, strict=True):
                on_progress(f"link {plan.label} ({chosen})")
                pid = wire_link(spec.name, plan, link, is_cut=False, seed=seed + plan.index)
                link_states.append(LinkState(plan.index, chosen, False, pid))
            state = EmulationState(
                spec=spec,
                image=image,
                mechanism=chosen,
                links=tuple(link_states),
                nodes=tuple(NodeState(n.name) for n in spec.nodes),
                created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            )
            save_state(state)
    except BaseException:
        log.info("up of %s failed or was interrupted; removing what was started", spec.name)
        _down_ignoring_sigint(spec.name)
        raise
    log.info("topology %s is up (%s)", spec.name, chosen)
    return state


def _down_ignoring_sigint(name: str) -> None:
    """A second Ctrl-C must not interrupt the cleanup of the first; a container the engine was still
    creating when the first one came is caught by the second pass."""
    is_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if is_main else None
    try:
        down(name)
        down(name)
    finally:
        if is_main:
            signal.signal(signal.SIGINT, previous)


def _hosts(spec: TopologySpec, plans: tuple[LinkPlan, ...]) -> dict[str, dict[str, str]]:
    """/etc/hosts entries per node: each neighbour by name at its address on the shared link."""
    hosts: dict[str, dict[str, str]] = {n.name: {} for n in spec.nodes}
    for plan in plans:
        hosts[plan.a.node][plan.b.node] = plan.b.address
        hosts[plan.b.node][plan.a.node] = plan.a.address
    return hosts


def down(name: str | None = None) -> list[str]:
    """Remove one topology (or every one) by label: delay lines, containers, namespaces, state. Idempotent."""
    names = [name] if name else running_names()
    if name and not (
        state_dir(name).exists() or docker_backend.list_nodes(name) or find_netns(name) or delayline_pids(name)
    ):
        return []
    for topo in names:
        kill_pids(delayline_pids(topo))
        for container in docker_backend.list_nodes(topo):
            docker_backend.remove_node(container.name)
        for ns in find_netns(topo):
            path = NETNS_DIR / ns
            if path.is_symlink():
                unalias_node_netns(topo, ns.split(".", 2)[2])
            else:
                try_run(["ip", "netns", "delete", ns])
        remove_state_dir(topo)
        log.info("topology %s is down", topo)
    return names


@dataclass(frozen=True)
class NodeStatus:
    name: str
    tier: str
    container_status: str
    cpus: float
    memory_bytes: int
    load_workers: int


@dataclass(frozen=True)
class LinkStatus:
    a: str
    b: str
    bandwidth_mbps: float
    rtt_ms: float
    jitter_ms: float
    loss_pct: float
    mechanism: str
    is_cut: bool
    is_delayline_alive: bool | None


@dataclass(frozen=True)
class Leftovers:
    """What a topology without a state file left on the host, found by the project's labels and names."""

    containers: tuple[str, ...]
    netns: tuple[str, ...]
    delayline_pids: tuple[int, ...]
    state_dir: str | None

    @property
    def is_empty(self) -> bool:
        return not (self.containers or self.netns or self.delayline_pids or self.state_dir)


@dataclass(frozen=True)
class TopologyStatus:
    """condition: "running" (state file written by a finished `up`), "starting" (an `up` holds the lock) or
    "broken" (traces without a state file, e.g. `up` killed part-way); remedy says what to run then."""

    name: str
    image: str
    created_at: str
    nodes: tuple[NodeStatus, ...]
    links: tuple[LinkStatus, ...]
    condition: str = "running"
    leftovers: Leftovers | None = None
    remedy: str | None = None
    problem: str | None = None


def _leftovers(name: str) -> Leftovers:
    directory = state_dir(name)
    return Leftovers(
        containers=tuple(c.name for c in docker_backend.list_nodes(name)),
        netns=tuple(find_netns(name)),
        delayline_pids=tuple(delayline_pids(name)),
        state_dir=str(directory) if directory.exists() else None,
    )


def _is_being_started(name: str) -> bool:
    """An `up` in progress holds the topology's lock; a killed one released it with its last descriptor."""
    try:
        fd = os.open(state_dir(name) / "lock", os.O_RDONLY)  # never creates the lock file
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _unfinished_status(name: str, leftovers: Leftovers, problem: str | None = None) -> TopologyStatus:
    if problem is None and _is_being_started(name):
        return TopologyStatus(name, "", "", (), (), "starting", leftovers, None)
    problem = problem or "`emulator up` did not finish (no state file)"
    return TopologyStatus(name, "", "", (), (), "broken", leftovers, f"emulator down {name}", problem)


def status(name: str | None = None) -> list[TopologyStatus]:
    """What is running, from the state file cross-checked against the engine and /proc; topologies with
    traces but no state file (an `up` killed part-way) are listed as broken, with the command that removes them."""
    names = [name] if name else running_names()
    out = []
    for topo in names:
        if topo not in state_names():
            leftovers = _leftovers(topo)
            if leftovers.is_empty:
                load_state(topo)  # raises NotRunning with the names that are running
            out.append(_unfinished_status(topo, leftovers))
            continue
        try:
            state = load_state(topo)
        except NotRunning as exc:  # unreadable or malformed state: one broken topology, not a failed listing
            out.append(_unfinished_status(topo, _leftovers(topo), problem=str(exc).split("; run `")[0]))
            continue
        containers = {c.node: c for c in docker_backend.list_nodes(topo)}
        alive = set(delayline_pids(topo))
        nodes = tuple(
            NodeStatus(
                n.name,
                n.tier,
                containers[n.name].status if n.name in containers else "missing",
                n.cpus,
                n.memory_bytes,
                state.node_state(n.name).load_workers,
            )
            for n in state.spec.nodes
        )
        links = tuple(
            LinkStatus(
                lk.a,
                lk.b,
                lk.bandwidth_mbps,
                lk.rtt_ms,
                lk.jitter_ms,
                lk.loss_pct,
                ls.mechanism,
                ls.is_cut,
                (ls.delayline_pid in alive) if ls.delayline_pid else None,
            )
            for lk, ls in zip(state.spec.links, state.links, strict=True)
        )
        out.append(TopologyStatus(topo, state.image, state.created_at, nodes, links))
    return out


def require_single_running(name: str | None) -> str:
    """Resolve an omitted topology name to the only running one."""
    if name:
        return name
    names = state_names()
    if len(names) == 1:
        return names[0]
    if not names:
        raise EmulatorError("no topology is running; start one with `emulator up TOPOLOGY.yaml`")
    raise EmulatorError(f"several topologies are running ({', '.join(names)}); name one with -t NAME")
