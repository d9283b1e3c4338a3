"""The emulator error tree; the CLI turns any of these into one line on stderr and exit status 2.

EmulatorError
 +-- TopologyError        a topology file or value is invalid (names the field and the bad value)
 +-- CommandFailed        an `ip`/`tc`/`ethtool` command exited non-zero (argv, returncode, stderr)
 +-- EngineError          the Docker Engine is unreachable or refused a request
 +-- ImageError           the node image cannot be built or found
 +-- AlreadyRunning       `up` of a topology name that is already running
 +-- NotRunning           an action on a topology, node or link that is not running
"""

from __future__ import annotations

from collections.abc import Sequence


class EmulatorError(Exception):
    """Root of every error the emulator raises on purpose."""


class TopologyError(EmulatorError):
    pass


class CommandFailed(EmulatorError):
    """A host command failed; the argv and its stderr are kept so the message can show both."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str):
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr = stderr
        detail = stderr.strip().splitlines()[-1] if stderr.strip() else "no stderr"
        super().__init__(f"command {' '.join(self.argv)!r} exited {returncode}: {detail}")


class EngineError(EmulatorError):
    pass


class ImageError(EmulatorError):
    pass


class AlreadyRunning(EmulatorError):
    pass


class NotRunning(EmulatorError):
    pass
