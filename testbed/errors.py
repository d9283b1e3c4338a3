"""The testbed error tree; the CLI turns any of these into one line on stderr and exit status 2.

TestbedError
 +-- InputFileError          an input file is missing, unreadable or has a bad field (names the field)
 |    +-- SimulationFileError   a simulation file
 |    +-- ExperimentFileError   an experiment file (`testbed run`)
 |    +-- SweepError            a sweep file, axis, value, base file or executor; raised before any point runs
 +-- ConfigurationError      a configuration is unknown or does not fit the model / topology
 +-- TraceError              a condition or arrival trace is malformed or has impossible values
 +-- ResourceMissing         a node maps to a resource (or model) that the profile folder does not have
 +-- RunFolderError          a `testbed run` results folder lacks a file or column `compare` needs
 +-- RunFailed               a measured run cannot go on (an agent did not start, a deploy or benchmark failed)
 +-- AgentError              a node agent gave no usable reply
 +-- ProtocolError           a frame breaks the agent's wire format (``fatal``: the stream is lost)
      +-- ConnectionClosed      the peer closed the connection

Errors of the other packages (``ScissionError``, ``EmulatorError``) become testbed errors only through
``translated`` below, so every such translation is written once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = [
    "AgentError",
    "ConfigurationError",
    "ConnectionClosed",
    "ExperimentFileError",
    "InputFileError",
    "ProtocolError",
    "ResourceMissing",
    "RunFailed",
    "RunFolderError",
    "SimulationFileError",
    "SweepError",
    "TestbedError",
    "TraceError",
    "translated",
]


class TestbedError(Exception):
    """Root of every error the testbed raises on purpose."""

    __test__ = False  # not a pytest test class despite the name


class InputFileError(TestbedError):
    pass


class SimulationFileError(InputFileError):
    pass


class ExperimentFileError(InputFileError):
    pass


class SweepError(InputFileError):
    """A sweep file, axis, value, base file or executor is wrong; raised before any point runs."""


class ConfigurationError(TestbedError):
    pass


class TraceError(TestbedError):
    pass


class ResourceMissing(TestbedError):
    def __init__(self, message: str, node: str | None = None, resource: str | None = None):
        self.node = node
        self.resource = resource
        super().__init__(message)


class RunFolderError(TestbedError):
    pass


class RunFailed(TestbedError):
    pass


class AgentError(TestbedError):
    pass


class ProtocolError(TestbedError):
    """A frame that breaks the wire format; ``fatal`` when the stream can no longer be trusted."""

    def __init__(self, message: str, fatal: bool = False):
        super().__init__(message)
        self.fatal = fatal


class ConnectionClosed(ProtocolError):
    def __init__(self, message: str = "peer closed the connection"):
        super().__init__(message, fatal=True)


@contextmanager
def translated(error: type[TestbedError], prefix: str = "") -> Iterator[None]:
    """Re-raise scission's and the emulator's errors as ``error("<prefix>: <message>")``.

    Only those two trees: a programming error (TypeError, KeyError, ...) keeps its traceback.
    """
    from emulator.errors import EmulatorError
    from scission.errors import ScissionError

    try:
        yield
    except (ScissionError, EmulatorError) as exc:
        raise error(f"{prefix}: {exc}" if prefix else str(exc)) from None
