"""Host capabilities: which qdiscs the kernel accepts, which tools exist, and the shaping mechanism to use."""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field

from emulator.errors import EmulatorError
from emulator.runner import run, try_run
from emulator.tc import DELAYLINE, NETEM

__all__ = ["QDISCS", "Capabilities", "choose_mechanism", "detect"]

log = logging.getLogger(__name__)

QDISCS = ("netem", "tbf", "htb", "fq", "fq_codel", "etf", "ingress")
_QDISC_ARGS = {
    "tbf": ("rate", "1mbit", "burst", "10kb", "latency", "50ms"),
    "etf": ("clockid", "CLOCK_TAI", "delta", "300000"),
}
TOOLS = ("ip", "tc", "ethtool", "nsenter")


@dataclass(frozen=True)
class Capabilities:
    qdiscs: dict[str, bool]
    tools: dict[str, bool]
    has_ifb: bool
    host_cpus: int
    cgroup_version: int
    notes: tuple[str, ...] = field(default=())

    @property
    def mechanism(self) -> str | None:
        """netem where the kernel has it; else tbf for rate plus the user-space delay line; else none."""
        if self.qdiscs.get("netem"):
            return NETEM
        if self.qdiscs.get("tbf") and self.tools.get("ethtool"):
            return DELAYLINE
        return None


def _cgroup_version() -> int:
    return 2 if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else 1


def detect() -> Capabilities:
    """Try each qdisc on a veth in a scratch namespace: the kernel's answer is the only reliable one."""
    tools = {tool: shutil.which(tool) is not None for tool in TOOLS}
    qdiscs = {kind: False for kind in QDISCS}
    has_ifb = False
    notes: list[str] = []
    if tools["ip"] and tools["tc"]:
        ns = f"emu.capcheck.{os.getpid()}"
        try:
            run(["ip", "netns", "add", ns])
            run(["ip", "-n", ns, "link", "add", "c0", "type", "veth", "peer", "name", "c1"])
            for kind in QDISCS:
                if kind == "ingress":
                    qdiscs[kind] = try_run(["tc", "-n", ns, "qdisc", "add", "dev", "c0", "ingress"])
                else:
                    qdiscs[kind] = try_run(
                        [
                            "tc",
                            "-n",
                            ns,
                            "qdisc",
                            "replace",
                            "dev",
                            "c1",
                            "root",
                            kind,
                            *_QDISC_ARGS.get(kind, ()),
                        ]
                    )
            has_ifb = try_run(["ip", "-n", ns, "link", "add", "ifb9", "type", "ifb"])
        except EmulatorError as exc:
            notes.append(f"capability check failed: {exc}")
        finally:
            try_run(["ip", "netns", "delete", ns])
    else:
        notes.append("iproute2 (ip, tc) is not installed")
    caps = Capabilities(qdiscs, tools, has_ifb, os.cpu_count() or 1, _cgroup_version(), tuple(notes))
    log.debug("capabilities: %s", caps)
    return caps


def choose_mechanism(requested: str, caps: Capabilities) -> str:
    """'auto' picks netem when available; 'netem' or 'delayline' force one (to test the fallback anywhere)."""
    if requested == "auto":
        mechanism = caps.mechanism
        if mechanism is None:
            raise EmulatorError(
                "this host can shape neither with netem nor with tbf+delayline (needs sch_netem, or sch_tbf and "
                "ethtool); run `emulator doctor`"
            )
        return mechanism
    if requested == "netem":
        if not caps.qdiscs.get("netem"):
            raise EmulatorError("--mechanism netem: this kernel has no sch_netem; use auto or delayline")
        return NETEM
    if requested in ("delayline", DELAYLINE):
        if not (caps.qdiscs.get("tbf") and caps.tools.get("ethtool")):
            raise EmulatorError("--mechanism delayline needs sch_tbf and ethtool on the host")
        return DELAYLINE
    raise EmulatorError(f"--mechanism {requested!r} is not one of auto, netem, delayline")
