"""CLI bad input: one clear line on stderr, exit status 2, nothing started."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NODES = [
    {"name": "device", "tier": "device", "cpus": 0.5, "memory": "256m"},
    {"name": "edge", "tier": "edge", "cpus": 1, "memory": "256m"},
]
LINK = {"a": "device", "b": "edge", "bandwidth": "10mbit", "rtt": "20ms"}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "emulator.cli", *args], capture_output=True, text=True, cwd=ROOT
    )


CASES = [
    ("unknown-node", NODES, [{**LINK, "b": "fog"}], "links[0].b: unknown node 'fog'"),
    (
        "zero-bandwidth",
        NODES,
        [{**LINK, "bandwidth": "0mbit"}],
        "links[0].bandwidth: '0mbit' must be greater than zero",
    ),
    ("negative-bandwidth", NODES, [{**LINK, "bandwidth": "-5mbit"}], "links[0].bandwidth: '-5mbit'"),
    (
        "no-unit",
        NODES,
        [{**LINK, "bandwidth": 20}],
        "links[0].bandwidth: '20' has no unit; use kbit/s, Mbit/s",
    ),
    ("no-unit-rtt", NODES, [{**LINK, "rtt": 20}], "links[0].rtt: '20' has no unit"),
    ("duplicate-node", [NODES[0], NODES[0]], [], "nodes[1].name: duplicate node name 'device'"),
    (
        "duplicate-link",
        NODES,
        [LINK, {**LINK, "a": "edge", "b": "device"}],
        "links[1]: duplicate link edge-device",
    ),
    ("too-many-cpus", [{**NODES[0], "cpus": 64}], [], "nodes[0].cpus: 64 for node device is more than the"),
]


@pytest.mark.parametrize(("case", "nodes", "links", "expected"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("command", [["up"], ["up", "--dry-run"], ["validate"]])
def test_bad_topology_is_one_line_exit_2(tmp_path, case, nodes, links, expected, command):
    path = tmp_path / f"{case}.yaml"
    path.write_text(yaml.safe_dump({"name": f"emutest-{case}", "nodes": nodes, "links": links}))
    out = _cli(*command, str(path))
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], out.stderr
    assert lines[0].startswith(f"emulator: {path}: "), "every topology message names its file"
    assert "Traceback" not in out.stderr and out.stdout == ""
    assert not Path(f"/run/emulator/emutest-{case}").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["link", "set", "device", "edge", "-t", "x", "--bandwidth", "5"], "--bandwidth: '5' has no unit"),
        (["link", "set", "device", "edge", "-t", "x", "--loss", "140%"], "--loss: '140%' outside 0-100%"),
        (["up", "/nonexistent/topology.yaml"], "topology file /nonexistent/topology.yaml does not exist"),
        (["status", "emu-not-running"], "topology 'emu-not-running' is not running"),
        (
            ["link", "cut", "a", "b", "-t", "emu-not-running"],
            "topology 'emu-not-running' is not running",
        ),
    ],
)
def test_other_bad_input_is_one_line_exit_2(args, expected):
    out = _cli(*args)
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], out.stderr
    assert not Path("/run/emulator/emu-not-running").exists(), "a refused command left a state dir/lock"


GHOST = "emu-ghost"
RUNTIME_COMMANDS = [
    ["link", "cut", "a", "b", "-t", GHOST],
    ["link", "restore", "a", "b", "-t", GHOST],
    ["link", "set", "a", "b", "--rtt", "5ms", "-t", GHOST],
    ["node", "cpus", "a", "0.5", "-t", GHOST],
    ["node", "load", "a", "start", "-t", GHOST],
    ["node", "load", "a", "stop", "-t", GHOST],
    ["node", "stop", "a", "-t", GHOST],
    ["node", "start", "a", "-t", GHOST],
    ["probe", GHOST],
]


@pytest.mark.parametrize("args", RUNTIME_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_runtime_command_on_a_topology_that_is_not_running_leaves_no_lock(args):
    """Issue 12: `link cut a b -t ghost` exited 2 but left /run/emulator/ghost/lock behind."""
    assert not Path(f"/run/emulator/{GHOST}").exists()
    out = _cli(*args)
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"emulator: topology '{GHOST}' is not running"), out.stderr
    assert not Path(f"/run/emulator/{GHOST}").exists()


def test_down_removes_a_stale_lock():
    """A state dir holding only a lock (what the old runtime commands left) is removed by `down NAME`."""
    from conftest import require_docker

    require_docker()
    stale = Path(f"/run/emulator/{GHOST}-stale")
    stale.mkdir(parents=True, exist_ok=True)
    (stale / "lock").write_text("")
    out = _cli("status")
    assert out.returncode == 0, out.stderr
    assert f"{GHOST}-stale" in out.stdout and f"emulator down {GHOST}-stale" in out.stdout
    out = _cli("down", f"{GHOST}-stale")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"down: {GHOST}-stale"
    assert not stale.exists()


def test_shipped_topologies_validate():
    for path in sorted((ROOT / "topologies").glob("*.yaml")):
        out = _cli("validate", str(path))
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith(f"{path}: ok")


def test_doctor_reports_engine_cgroup_and_qdiscs():
    import json

    out = _cli("doctor", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert {"engine", "cgroup_version", "qdiscs", "mechanism", "tools", "host_cpus"} <= set(report)
    assert report["cgroup_version"] in (1, 2)
    assert {"netem", "tbf", "htb"} <= set(report["qdiscs"])
    assert report["mechanism"] == ("netem" if report["qdiscs"]["netem"] else "tbf+delayline")


def test_dry_run_prints_the_link_commands_and_starts_nothing():
    out = _cli("up", str(ROOT / "topologies" / "three-tier-wifi.yaml"), "--dry-run")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert any(
        line.startswith("tc -n emu.three-tier-wifi.link0 qdisc replace dev pb root")  # tbf on the wire
        or line.startswith("tc -n emu.three-tier-wifi.device qdisc replace dev eth0 root")  # netem
        for line in lines
    )
    assert sum(" qdisc replace " in line for line in lines) == 6  # 3 links x 2 directions
    assert not Path("/run/emulator/three-tier-wifi").exists() or "three-tier-wifi" in _cli("status").stdout


def test_status_lists_a_topology_with_a_malformed_state_as_broken():
    """One unreadable state file used to fail the whole `status` listing; now that topology is broken."""
    from conftest import require_docker

    require_docker()
    name = f"{GHOST}-malformed"
    directory = Path(f"/run/emulator/{name}")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "state.json").write_text("{}")
    try:
        out = _cli("status")
        assert out.returncode == 0, out.stderr
        line = next(line for line in out.stdout.splitlines() if line.startswith(name))
        assert "BROKEN" in line and "is malformed" in line and f"`emulator down {name}`" in line, line
        assert _cli("status", name).returncode == 1
    finally:
        out = _cli("down", name)
    assert out.returncode == 0 and not directory.exists(), out
