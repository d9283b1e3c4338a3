"""State of running topologies on disk (/run/emulator/<name>/), so later CLI invocations can find them.

The Docker labels, the /run/netns names and the delay-line argv are the ground truth for cleanup; this
file adds what they cannot hold: the current (possibly changed) spec, cut links and CPU load.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from emulator.errors import NotRunning, TopologyError
from emulator.topology import TopologySpec, topology_from_dict
from scission.files import atomic_write_text

__all__ = [
    "EmulationState",
    "LinkState",
    "NodeState",
    "control_path",
    "load_state",
    "locked",
    "remove_state_dir",
    "run_dir",
    "save_state",
    "state_dir",
    "stale_dir_names",
    "state_names",
]

STATE_FILE = "state.json"


def run_dir() -> Path:
    """EMULATOR_RUN_DIR overrides /run/emulator (tests point it elsewhere only for pure-state tests)."""
    return Path(os.environ.get("EMULATOR_RUN_DIR", "/run/emulator"))


def state_dir(name: str) -> Path:
    return run_dir() / name


def control_path(name: str, index: int) -> Path:
    return state_dir(name) / f"link{index}.json"


@dataclass(frozen=True)
class LinkState:
    index: int
    mechanism: str
    is_cut: bool = False
    delayline_pid: int | None = None


@dataclass(frozen=True)
class NodeState:
    name: str
    is_stopped: bool = False
    load_workers: int = 0


@dataclass(frozen=True)
class EmulationState:
    spec: TopologySpec
    image: str
    mechanism: str
    links: tuple[LinkState, ...]
    nodes: tuple[NodeState, ...]
    created_at: str

    @property
    def name(self) -> str:
        return self.spec.name

    def link_state(self, index: int) -> LinkState:
        return self.links[index]

    def node_state(self, name: str) -> NodeState:
        return next(n for n in self.nodes if n.name == name)

    def with_link_state(self, link: LinkState) -> EmulationState:
        return replace(self, links=tuple(link if lk.index == link.index else lk for lk in self.links))

    def with_node_state(self, node: NodeState) -> EmulationState:
        return replace(self, nodes=tuple(node if n.name == node.name else n for n in self.nodes))

    def to_json(self) -> dict:
        return {
            "topology": self.spec.to_dict(),
            "image": self.image,
            "mechanism": self.mechanism,
            "links": [vars(lk) for lk in self.links],
            "nodes": [vars(n) for n in self.nodes],
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, data: dict) -> EmulationState:
        return cls(
            spec=topology_from_dict(data["topology"]),
            image=data["image"],
            mechanism=data["mechanism"],
            links=tuple(LinkState(**lk) for lk in data["links"]),
            nodes=tuple(NodeState(**n) for n in data["nodes"]),
            created_at=data["created_at"],
        )


def save_state(state: EmulationState) -> None:
    """Atomic replace, so a reader never sees half a file."""
    directory = state_dir(state.name)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_text(directory / STATE_FILE, json.dumps(state.to_json(), indent=1))


def load_state(name: str) -> EmulationState:
    path = state_dir(name) / STATE_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise _not_running(name) from None
    except (OSError, ValueError) as exc:
        raise NotRunning(
            f"state of topology {name!r} at {path} is unreadable ({exc}); run `emulator down {name}`"
        ) from None
    try:
        return EmulationState.from_json(data)
    except (KeyError, TypeError, TopologyError) as exc:
        raise NotRunning(
            f"state of topology {name!r} at {path} is malformed ({exc}); run `emulator down {name}`"
        ) from None


def state_names() -> list[str]:
    """Topologies whose `up` finished (their state file exists)."""
    base = run_dir()
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / STATE_FILE).is_file())


def stale_dir_names() -> list[str]:
    """State directories without a state file: an `up` still starting, or one killed part-way (leftovers)."""
    base = run_dir()
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if p.is_dir() and not (p / STATE_FILE).is_file())


def _not_running(name: str) -> NotRunning:
    running = state_names()
    hint = f"running: {', '.join(running)}" if running else "none is running"
    return NotRunning(f"topology {name!r} is not running ({hint})")


@contextmanager
def locked(name: str, *, create: bool = False) -> Iterator[None]:
    """Serialise changes to one topology across processes (two CLI actions at once).

    Only `up` creates the state directory (create=True); an action on a topology that is not running
    raises NotRunning before touching the disk, so it leaves no lock or directory behind.
    """
    directory = state_dir(name)
    if create:
        directory.mkdir(parents=True, exist_ok=True)
    elif not (directory / STATE_FILE).is_file():
        raise _not_running(name)
    with open(directory / "lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def remove_state_dir(name: str) -> None:
    directory = state_dir(name)
    if directory.is_dir():
        for path in directory.iterdir():
            path.unlink(missing_ok=True)
        directory.rmdir()
