"""All Docker Engine calls (the only module importing the docker SDK); SDK errors become EmulatorErrors."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import docker.errors
import requests.exceptions

import docker
from emulator.errors import EmulatorError, EngineError, ImageError, NotRunning

__all__ = [
    "LABEL_NODE",
    "LABEL_TOPOLOGY",
    "ContainerInfo",
    "build_image",
    "container_name",
    "create_node",
    "engine_info",
    "exec_in",
    "image_exists",
    "list_nodes",
    "node_info",
    "pull_image",
    "remove_images",
    "remove_node",
    "start_node",
    "stop_node",
    "update_cpus",
]

log = logging.getLogger(__name__)

LABEL_TOPOLOGY = "org.scission.emulator.topology"
LABEL_NODE = "org.scission.emulator.node"
# 10 ms CFS periods: a CPU-limited node is throttled in small slices, so a 20 ms block on a 0.25-CPU
# device is slowed evenly instead of running at full speed and then stalling for most of 100 ms.
CPU_PERIOD_US = 10_000
API_VERSION = "1.41"


@dataclass(frozen=True)
class ContainerInfo:
    name: str
    topology: str
    node: str
    status: str
    pid: int
    cpus: float


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Translate SDK/HTTP failures in one place so callers only see EmulatorError subclasses."""
    try:
        yield
    except EmulatorError:
        raise
    except docker.errors.NotFound as exc:
        raise NotRunning(f"{what}: {exc.explanation or exc}") from exc
    except docker.errors.ImageNotFound as exc:
        raise ImageError(f"{what}: {exc.explanation or exc}") from exc
    except docker.errors.APIError as exc:
        raise EngineError(f"{what}: {exc.explanation or exc}") from exc
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise EngineError(
            f"{what}: Docker Engine not reachable ({exc}); run scripts/ensure_docker.sh"
        ) from exc


def _check_unix_socket() -> None:
    """Answer "no engine" ourselves for unix sockets: the SDK leaks its socket when the connect fails."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return
    path = host.removeprefix("unix://")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        try:
            sock.connect(path)
        except OSError as exc:
            raise EngineError(
                f"Docker Engine not reachable at {path} ({exc.strerror or exc}); run scripts/ensure_docker.sh"
            ) from None


@cache
def _client() -> docker.DockerClient:
    _check_unix_socket()
    with _translated("connecting to Docker"):
        # A fixed API version (Docker 20.10+) skips the version query in the constructor, which leaks its
        # socket when no engine answers; ping below then fails cleanly.
        client = docker.from_env(timeout=120, version=API_VERSION)
        try:
            client.ping()
        except BaseException:
            client.close()  # do not leak the half-open session socket
            raise
        return client


def container_name(topology: str, node: str) -> str:
    return f"emu.{topology}.{node}"


def engine_info() -> dict:
    """Engine version, cgroup version/driver and storage driver, as `docker info` reports them."""
    with _translated("reading engine info"):
        info = _client().info()
        version = _client().version()
    return {
        "server_version": version.get("Version"),
        "api_version": version.get("ApiVersion"),
        "cgroup_version": info.get("CgroupVersion"),
        "cgroup_driver": info.get("CgroupDriver"),
        "storage_driver": info.get("Driver"),
        "ncpu": info.get("NCPU"),
        "mem_total_bytes": info.get("MemTotal"),
        "kernel_version": info.get("KernelVersion"),
    }


def image_exists(tag: str) -> bool:
    with _translated(f"looking up image {tag}"):
        try:
            _client().images.get(tag)
        except docker.errors.ImageNotFound:
            return False
    return True


def build_image(
    context_dir: Path, tag: str, buildargs: dict[str, str], on_line: Callable[[str], None]
) -> None:
    """Build with the engine's builder, streaming each output line to on_line."""
    with _translated(f"building image {tag}"):
        stream = _client().api.build(
            path=str(context_dir),
            tag=tag,
            buildargs=buildargs,
            rm=True,
            forcerm=True,
            decode=True,
            pull=False,
        )
        for chunk in stream:
            if "error" in chunk:
                raise ImageError(f"building image {tag}: {chunk['error'].strip()}")
            text = chunk.get("stream", "")
            for line in text.splitlines():
                if line.strip():
                    on_line(line.rstrip())


def pull_image(reference: str) -> None:
    with _translated(f"pulling {reference} (no registry reachable? use the offline base instead)"):
        _client().images.pull(reference)


def remove_images(repository: str, keep: str, keep_newest: int = 4) -> list[str]:
    """Drop older content-hash tags of repository beyond the ``keep_newest`` most recent; tags still used
    by a container are kept (conflict). Keeping a few lets checkouts of different sources (worktrees, CI next
    to a developer) build and run side by side without deleting each other's image."""
    removed = []
    with _translated(f"pruning {repository} images"):
        images = sorted(_client().images.list(name=repository), key=lambda i: i.attrs.get("Created", ""), reverse=True)
        for image in images[keep_newest:]:
            for tag in image.tags:
                if tag != keep and tag.startswith(f"{repository}:"):
                    try:
                        _client().images.remove(tag)
                        removed.append(tag)
                    except docker.errors.APIError as exc:
                        log.debug("keeping %s: %s", tag, exc)
    return removed


# Tiers keep persistent connections to each other, as a serving pipeline does, and a request often follows
# an idle gap. Without these settings the host's congestion control leaks into the nodes (this host's is
# BBR), and an idle connection restarts from the initial window. Reno (always allowed in a container's
# namespace) without slow-start-after-idle keeps the window a warm connection had; link probes measure
# throughput under the same settings.
NODE_SYSCTLS = {"net.ipv4.tcp_congestion_control": "reno", "net.ipv4.tcp_slow_start_after_idle": "0"}


def create_node(
    topology: str, node: str, image: str, cpus: float, memory_bytes: int, extra_hosts: dict[str, str]
) -> ContainerInfo:
    """Start one node container without networking; links are wired into its namespace afterwards."""
    name = container_name(topology, node)
    with _translated(f"starting node {node}"):
        container = _client().containers.run(
            image,
            command=["sleep", "infinity"],
            name=name,
            hostname=node,
            detach=True,
            init=True,
            network_mode="none",
            cpu_period=CPU_PERIOD_US,
            cpu_quota=int(round(cpus * CPU_PERIOD_US)),
            mem_limit=memory_bytes,
            memswap_limit=memory_bytes,
            extra_hosts=extra_hosts,
            labels={LABEL_TOPOLOGY: topology, LABEL_NODE: node},
            environment={"SCISSION_NODE": node, "SCISSION_TOPOLOGY": topology},
            sysctls=NODE_SYSCTLS,
        )
    return node_info(topology, node, container=container)


def node_info(topology: str, node: str, container=None) -> ContainerInfo:
    with _translated(f"inspecting node {node} of {topology}"):
        if container is None:
            container = _client().containers.get(container_name(topology, node))
        container.reload()
        host = container.attrs["HostConfig"]
        quota, period = host.get("CpuQuota") or 0, host.get("CpuPeriod") or CPU_PERIOD_US
        return ContainerInfo(
            name=container.name,
            topology=topology,
            node=node,
            status=container.status,
            pid=int(container.attrs["State"].get("Pid") or 0),
            cpus=quota / period if quota > 0 else float("nan"),
        )


def list_nodes(topology: str | None = None) -> list[ContainerInfo]:
    """Every emulator container (of one topology, or of all), found by label."""
    label = f"{LABEL_TOPOLOGY}={topology}" if topology else LABEL_TOPOLOGY
    with _translated("listing emulator containers"):
        # docker-py inspects each listed container; one removed in between (a down, a Ctrl-C) is NotFound:
        # list again rather than fail.
        for attempt in range(5):
            try:
                containers = _client().containers.list(all=True, filters={"label": label})
                break
            except docker.errors.NotFound:
                if attempt == 4:
                    raise
                time.sleep(0.05)
    out = []
    for c in containers:
        try:
            out.append(node_info(c.labels[LABEL_TOPOLOGY], c.labels.get(LABEL_NODE, "?"), container=c))
        except NotRunning:  # removed between the listing and its inspection (another topology's down)
            continue
    return out


def remove_node(name: str) -> None:
    with _translated(f"removing container {name}"):
        try:
            _client().containers.get(name).remove(force=True)
        except docker.errors.NotFound:
            pass


def update_cpus(topology: str, node: str, cpus: float) -> None:
    with _translated(f"setting cpus of {node}"):
        _client().containers.get(container_name(topology, node)).update(
            cpu_period=CPU_PERIOD_US, cpu_quota=int(round(cpus * CPU_PERIOD_US))
        )


def stop_node(topology: str, node: str) -> None:
    """Kill at once (timeout 0): an emulated node failure is abrupt, and actions must land within 1 s."""
    with _translated(f"stopping node {node}"):
        _client().containers.get(container_name(topology, node)).stop(timeout=0)


def start_node(topology: str, node: str) -> ContainerInfo:
    with _translated(f"starting node {node}"):
        container = _client().containers.get(container_name(topology, node))
        container.start()
    return node_info(topology, node, container=container)


def exec_in(topology: str, node: str, argv: Sequence[str], *, detach: bool = False) -> tuple[int, str]:
    """Run argv inside a node; returns (exit status, combined output). Detached runs return (0, '')."""
    with _translated(f"running {argv[0]} on {node}"):
        container = _client().containers.get(container_name(topology, node))
        if container.status != "running":
            raise NotRunning(f"node {node} of {topology} is {container.status}; start it first")
        result = container.exec_run(list(argv), detach=detach, demux=False)
    if detach:
        return 0, ""
    output = result.output.decode("utf-8", "replace") if result.output else ""
    return int(result.exit_code or 0), output
