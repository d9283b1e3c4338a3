"""emulator: device, edge and cloud tiers as Docker containers with CPU limits and shaped links.

The pure modules (topology, tc, errors) import nothing heavy; the Docker-backed API below is loaded
on first use, so `import emulator.topology` never imports the docker SDK.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from emulator.errors import (
    AlreadyRunning,
    CommandFailed,
    EmulatorError,
    EngineError,
    ImageError,
    NotRunning,
    TopologyError,
)
from emulator.topology import LinkSpec, NodeSpec, TopologySpec, load_topology

if TYPE_CHECKING:
    from emulator.emulation import Emulation
    from emulator.probe import ProbeResult

__all__ = [
    "AlreadyRunning",
    "CommandFailed",
    "Emulation",
    "EmulatorError",
    "EngineError",
    "ImageError",
    "LinkSpec",
    "NodeSpec",
    "NotRunning",
    "ProbeResult",
    "TopologyError",
    "TopologySpec",
    "load_topology",
]

_LAZY = {"Emulation": "emulator.emulation", "ProbeResult": "emulator.probe"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'emulator' has no attribute {name!r}")
