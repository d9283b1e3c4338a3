"""Run host commands (ip, tc, ethtool) given as argv lists; a non-zero exit raises CommandFailed."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterable, Sequence

from emulator.errors import CommandFailed

__all__ = ["run", "run_all", "try_run"]

log = logging.getLogger(__name__)


def run(argv: Sequence[str], *, timeout_s: float = 30.0, input_text: str | None = None) -> str:
    """Run one command and return its stdout; failures are never logged-and-ignored, they raise."""
    log.debug("run %s", " ".join(argv))
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout_s, input=input_text, check=False
        )
    except FileNotFoundError as exc:
        raise CommandFailed(argv, 127, f"{argv[0]}: not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(argv, -1, f"timed out after {timeout_s:g} s") from exc
    if proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode, proc.stderr)
    return proc.stdout


def run_all(commands: Iterable[Sequence[str]]) -> None:
    """Run a prepared command list in order, stopping at the first failure."""
    for argv in commands:
        run(argv)


def try_run(argv: Sequence[str]) -> bool:
    """Run a command whose failure is an expected answer (capability probes, cleanup of absent things)."""
    try:
        run(argv, timeout_s=10.0)
    except CommandFailed as exc:
        log.debug("expected failure: %s", exc)
        return False
    return True
