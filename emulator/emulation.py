"""Python API for one running topology: a handle whose methods delegate to lifecycle, actions and probe."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from emulator import actions, docker_backend, lifecycle
from emulator.errors import TopologyError
from emulator.probe import ProbeResult, probe
from emulator.state import EmulationState, load_state
from emulator.tc import link_plans
from emulator.topology import LinkSpec, NodeSpec, TopologySpec, load_topology

__all__ = ["Emulation"]


class Emulation:
    """A running topology by name; cheap to create, so any process can attach to one started elsewhere.

    Use as a context manager to bring the topology down on exit::

        with Emulation.up("topologies/three-tier-wifi.yaml") as emu:
            emu.set_link("device", "edge", bandwidth_mbps=5)
            print(emu.probe())
    """

    def __init__(self, name: str):
        self.name = name

    @classmethod
    def up(cls, topology: TopologySpec | str | Path, **kwargs) -> Emulation:
        spec = topology if isinstance(topology, TopologySpec) else load_topology(topology)
        lifecycle.up(spec, **kwargs)
        return cls(spec.name)

    @classmethod
    def attach(cls, name: str) -> Emulation:
        load_state(name)  # raises NotRunning with the list of running names
        return cls(name)

    def __enter__(self) -> Emulation:
        return self

    def __exit__(self, *exc_info) -> None:
        self.down()

    def __repr__(self) -> str:
        return f"Emulation({self.name!r})"

    @property
    def state(self) -> EmulationState:
        return load_state(self.name)

    @property
    def spec(self) -> TopologySpec:
        return self.state.spec

    def status(self) -> lifecycle.TopologyStatus:
        return lifecycle.status(self.name)[0]

    def down(self) -> None:
        lifecycle.down(self.name)

    def address(self, node: str, peer: str) -> str:
        """The IPv4 address of node on its link to peer (peer reaches node there; also /etc/hosts name)."""
        state = self.state
        link = state.spec.link(node, peer)
        if link is None:
            raise TopologyError(f"no link {node}-{peer} in topology {self.name}")
        return link_plans(state.spec, state.mechanism)[state.spec.links.index(link)].port(node).address

    def exec(self, node: str, argv: Sequence[str], *, detach: bool = False) -> tuple[int, str]:
        """Run argv inside a node: (exit status, combined output); detach=True returns (0, '') at once."""
        return docker_backend.exec_in(self.name, node, argv, detach=detach)

    def set_link(self, a: str, b: str, **changes: float) -> LinkSpec:
        return actions.set_link(self.name, a, b, **changes)

    def cut_link(self, a: str, b: str) -> None:
        actions.cut_link(self.name, a, b)

    def restore_link(self, a: str, b: str) -> None:
        actions.restore_link(self.name, a, b)

    def set_cpus(self, node: str, cpus: float) -> NodeSpec:
        return actions.set_cpus(self.name, node, cpus)

    def start_load(self, node: str, workers: int | None = None) -> int:
        return actions.start_load(self.name, node, workers)

    def stop_load(self, node: str) -> None:
        actions.stop_load(self.name, node)

    def stop_node(self, node: str) -> None:
        actions.stop_node(self.name, node)

    def start_node(self, node: str) -> None:
        actions.start_node(self.name, node)

    def probe(self, *, duration_s: float = 2.0, count: int = 10) -> list[ProbeResult]:
        return probe(self.name, duration_s=duration_s, count=count)
