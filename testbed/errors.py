"""The testbed error tree; the CLI turns any of these into one line on stderr and exit status 2.

TestbedError
 +-- SimulationFileError   a simulation file is missing, unreadable or has a bad field (names the field)
 +-- ConfigurationError    a configuration is unknown or does not fit the model / topology
 +-- TraceError            a condition or arrival trace is malformed or has impossible values
 +-- ResourceMissing       a node maps to a resource (or model) that the profile folder does not have
 +-- RunFolderError        a `testbed run` results folder lacks a file or column `compare` needs
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "ResourceMissing",
    "RunFolderError",
    "SimulationFileError",
    "TestbedError",
    "TraceError",
]


class TestbedError(Exception):
    """Root of every error the testbed raises on purpose."""

    __test__ = False  # not a pytest test class despite the name


class SimulationFileError(TestbedError):
    pass


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
