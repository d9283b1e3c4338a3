"""Sweep errors (part of the testbed tree: SweepError is a TestbedError)."""

from testbed.errors import TestbedError


class SweepError(TestbedError):
    """A sweep file, axis, value, base file or executor is wrong; raised before any point runs."""
