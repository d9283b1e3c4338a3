"""Wire, shape and unwire one link on the host: namespaces, veths, tc, and the delay-line process."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from emulator.errors import CommandFailed, EmulatorError
from emulator.runner import run_all, try_run
from emulator.state import control_path, state_dir
from emulator.tc import (
    DELAYLINE,
    LinkPlan,
    delayline_argv,
    node_netns,
    render_shape,
    render_teardown,
    render_wiring,
)
from emulator.topology import LinkSpec
from scission.files import atomic_write_text

__all__ = [
    "NETNS_DIR",
    "alias_node_netns",
    "apply_shape",
    "delayline_pids",
    "delayline_topologies",
    "find_netns",
    "kill_pids",
    "start_delayline",
    "unalias_node_netns",
    "unwire_link",
    "wire_link",
    "write_control",
]

log = logging.getLogger(__name__)

NETNS_DIR = Path("/run/netns")
DELAYLINE_SCRIPT = str(Path(__file__).with_name("delayline.py"))
READY_TIMEOUT_S = 5.0


def alias_node_netns(topology: str, node: str, pid: int) -> None:
    """Name the container's namespace (/run/netns/emu.<topology>.<node> -> /proc/<pid>/ns/net) for `ip -n`."""
    NETNS_DIR.mkdir(parents=True, exist_ok=True)
    path = NETNS_DIR / node_netns(topology, node)
    if path.is_symlink() or path.exists():
        path.unlink()
    path.symlink_to(f"/proc/{pid}/ns/net")


def unalias_node_netns(topology: str, node: str) -> None:
    path = NETNS_DIR / node_netns(topology, node)
    if path.is_symlink():
        path.unlink()


def find_netns(topology: str | None = None) -> list[str]:
    """Our names in /run/netns: node aliases and wire namespaces, all starting 'emu.<topology>.'."""
    if not NETNS_DIR.is_dir():
        return []
    prefix = f"emu.{topology}." if topology else "emu."
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix))


def write_control(topology: str, plan: LinkPlan, link: LinkSpec, *, is_cut: bool) -> Path:
    """The delay line's parameters (per direction: half the rtt and half the jitter)."""
    path = control_path(topology, plan.index)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        path,
        json.dumps(
            {
                "delay_ms": link.one_way_delay_ms,
                "jitter_ms": link.jitter_ms / 2,
                "loss_pct": link.loss_pct,
                "is_cut": is_cut,
            }
        )
    )
    return path


def start_delayline(topology: str, plan: LinkPlan, link: LinkSpec, *, is_cut: bool, seed: int) -> int:
    """Start the delay line fully detached (setsid -f: own session, parent init), so Ctrl-C in the CLI never
    reaches it and no Popen object outlives this call; its pid comes from its "ready" line."""
    control = write_control(topology, plan, link, is_cut=is_cut)
    log_path = state_dir(topology) / f"link{plan.index}.log"
    argv = delayline_argv(plan, topology, sys.executable, DELAYLINE_SCRIPT, str(control), link, seed)
    log.debug("run setsid -f %s", " ".join(argv))
    with open(log_path, "wb") as log_fh:
        subprocess.run(
            ["setsid", "-f", *argv],
            stdin=subprocess.DEVNULL,
            stdout=log_fh,
            stderr=log_fh,
            check=True,
            close_fds=True,
        )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        match = re.search(r"ready, pid (\d+)", text)
        if match:
            return int(match.group(1))
        if "Traceback" in text or "error" in text.lower():
            time.sleep(0.05)  # let the traceback finish
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise CommandFailed(argv, 1, tail[0])
        time.sleep(0.01)
    for pid in delayline_pids(topology):
        if _cmdline(pid)[_cmdline(pid).index("--link") + 1] == str(plan.index):
            kill_pids([pid])
    raise EmulatorError(
        f"delay line for link {plan.label} did not start within {READY_TIMEOUT_S:g} s; see {log_path}"
    )


def apply_shape(
    plan: LinkPlan, link: LinkSpec, *, is_cut: bool, delayline_pid: int | None, topology: str
) -> None:
    """Re-apply a link's shape in place (runtime change): tc for the rate, SIGHUP for the delay line."""
    run_all(render_shape(plan, link, is_cut=is_cut))
    if plan.mechanism == DELAYLINE:
        write_control(topology, plan, link, is_cut=is_cut)
        if delayline_pid is None:
            raise EmulatorError(f"link {plan.label} has no delay line running; restart the topology")
        try:
            os.kill(delayline_pid, signal.SIGHUP)
        except ProcessLookupError:
            raise EmulatorError(f"delay line of link {plan.label} (pid {delayline_pid}) has died") from None


def wire_link(topology: str, plan: LinkPlan, link: LinkSpec, *, is_cut: bool, seed: int) -> int | None:
    """Create, shape and start one link; returns the delay line's pid (None with netem)."""
    run_all(render_wiring(plan))
    run_all(render_shape(plan, link, is_cut=is_cut))
    if plan.mechanism == DELAYLINE:
        return start_delayline(topology, plan, link, is_cut=is_cut, seed=seed)
    return None


def unwire_link(plan: LinkPlan, delayline_pid: int | None) -> None:
    """Stop the delay line first (it holds the wire namespace busy), then delete the veths; idempotent."""
    if delayline_pid:
        kill_pids([delayline_pid])
    for argv in render_teardown(plan):
        try_run(argv)


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def delayline_pids(topology: str | None = None) -> list[int]:
    """Delay-line processes found by their label arguments (--topology NAME), e.g. left by a crashed run."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        argv = _cmdline(int(entry.name))
        if not any(arg == DELAYLINE_SCRIPT or arg.endswith("/emulator/delayline.py") for arg in argv):
            continue
        if "--topology" not in argv:
            continue
        label = argv[argv.index("--topology") + 1] if argv.index("--topology") + 1 < len(argv) else None
        if topology is None or label == topology:
            pids.append(int(entry.name))
    return pids


def delayline_topologies() -> set[str]:
    """Topology names of every running delay line, from their --topology label."""
    names = set()
    for pid in delayline_pids():
        argv = _cmdline(pid)
        if "--topology" in argv and argv.index("--topology") + 1 < len(argv):
            names.add(argv[argv.index("--topology") + 1])
    return names


def kill_pids(pids: list[int], timeout_s: float = 1.0) -> None:
    """SIGTERM, wait, then SIGKILL: the delay lines exit at their next wake-up (at most 1 s)."""
    alive = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
            alive.append(pid)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout_s
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if _is_alive(pid)]
        if alive:
            time.sleep(0.01)
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _is_alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)  # reap our own children so they do not linger as zombies
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
