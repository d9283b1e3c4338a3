"""Emulator against a real Docker Engine: lifecycle, shaping, runtime actions, probe and cleanup.

Under CI=true these fail (never skip) when no engine answers; start one with scripts/ensure_docker.sh.
Kept short: small topologies, sub-second echo checks, 1 s bulk transfers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import require_docker

from emulator.errors import AlreadyRunning, TopologyError
from emulator.topology import topology_from_dict

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "emu-dock"


_engine_or_fail = require_docker


@pytest.fixture(scope="module")
def image():
    _engine_or_fail()
    if os.geteuid() != 0:
        pytest.fail("the emulator wires namespaces and needs root") if os.environ.get(
            "CI"
        ) == "true" else pytest.skip("needs root")
    from emulator.image import build_node_image

    return build_node_image()


def _spec(name: str, *, links=None, nodes=None):
    return topology_from_dict(
        {
            "name": name,
            "nodes": nodes
            or [
                {"name": "device", "tier": "device", "cpus": 0.5, "memory": "256m"},
                {"name": "edge", "tier": "edge", "cpus": 1.0, "memory": "512m"},
                {"name": "cloud", "tier": "cloud", "cpus": 1.0, "memory": "512m"},
            ],
            "links": links
            if links is not None
            else [
                {"a": "device", "b": "edge", "bandwidth": "10mbit", "rtt": "20ms"},
                {"a": "edge", "b": "cloud", "bandwidth": "50mbit", "rtt": "10ms"},
            ],
        }
    )


def _leftovers(name: str) -> dict:
    from emulator import docker_backend, state, wiring

    return {
        "containers": [c.name for c in docker_backend.list_nodes(name)],
        "netns": wiring.find_netns(name),
        "delaylines": wiring.delayline_pids(name),
        "state": state.state_dir(name).exists(),
    }


NOTHING = {"containers": [], "netns": [], "delaylines": [], "state": False}

ECHO_SERVER = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 7007))
while True:
    d, a = s.recvfrom(2048); s.sendto(d, a)
"""
ECHO_CLIENT = """
import socket, sys, time, statistics
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(float(sys.argv[2]))
out = []
for i in range(6):
    t = time.perf_counter(); s.sendto(b"%d" % i, (sys.argv[1], 7007))
    try:
        while s.recvfrom(64)[0] != b"%d" % i:
            pass
        out.append((time.perf_counter() - t) * 1000)
    except socket.timeout:
        pass
print(statistics.median(out[1:]) if len(out) > 1 else -1)
"""


def _echo_rtt_ms(emu, src: str, dst: str, timeout_s: float = 0.5) -> float:
    """Median echo RTT src -> dst over the shared link; -1 when nothing comes back."""
    rc, out = emu.exec(src, ["python3", "-c", ECHO_CLIENT, emu.address(dst, src), str(timeout_s)])
    assert rc == 0, out
    return float(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def emu(image):
    from emulator import Emulation, lifecycle

    name = f"{PREFIX}-main"
    lifecycle.down(name)
    emulation = Emulation.up(_spec(name), image=image)
    for node in ("device", "edge", "cloud"):
        emulation.exec(node, ["sh", "-c", f"python3 -c '{ECHO_SERVER}' >/dev/null 2>&1 &"])
    time.sleep(0.3)
    yield emulation
    emulation.down()
    assert _leftovers(name) == NOTHING


def test_containers_are_labelled_with_limits_and_state_is_discoverable(emu):
    from emulator import Emulation, docker_backend

    containers = {c.node: c for c in docker_backend.list_nodes(emu.name)}
    assert set(containers) == {"device", "edge", "cloud"}
    assert containers["device"].cpus == pytest.approx(0.5) and containers["edge"].cpus == pytest.approx(1.0)
    st = Emulation.attach(emu.name).status()  # a fresh handle finds it through the state file
    assert [(lk.a, lk.b, lk.mechanism, lk.is_cut) for lk in st.links] == [
        ("device", "edge", emu.state.mechanism, False),
        ("edge", "cloud", emu.state.mechanism, False),
    ]
    assert emu.state.mechanism in ("netem", "tbf+delayline")
    # persistent tier-to-tier connections keep their congestion window across idle gaps
    rc, out = emu.exec("device", ["cat", "/proc/sys/net/ipv4/tcp_slow_start_after_idle"])
    assert rc == 0 and out.strip() == "0"


def test_rtt_is_applied_and_nodes_without_a_link_cannot_reach_each_other(emu):
    assert _echo_rtt_ms(emu, "device", "edge") == pytest.approx(20, abs=1 + 2)
    assert _echo_rtt_ms(emu, "edge", "cloud") == pytest.approx(10, abs=1 + 1)
    rc, out = emu.exec(
        "device", ["python3", "-c", "import socket; socket.create_connection(('cloud', 9), 1)"]
    )
    assert rc != 0 and ("gaierror" in out or "unreachable" in out), out
    rc, out = emu.exec(
        "device",
        [
            "python3",
            "-c",
            f"import socket; socket.create_connection(('{emu.address('cloud', 'edge')}', 9), 1)",
        ],
    )
    assert rc != 0 and "unreachable" in out, out


def test_probe_reports_every_direction_near_its_configuration(emu):
    results = emu.probe(duration_s=1.2, count=5)
    assert [(r.a, r.b) for r in results] == [
        ("device", "edge"),
        ("edge", "device"),
        ("edge", "cloud"),
        ("cloud", "edge"),
    ]
    for r in results:
        assert r.error is None
        assert r.mechanism == emu.state.mechanism
        assert r.measured_mbps == pytest.approx(r.configured_mbps, rel=0.15)
        assert r.tcp_goodput_mbps == r.measured_mbps
        assert r.measured_rate_mbps == pytest.approx(r.configured_mbps, rel=0.05)
        assert r.configured_loss_pct == 0 and r.measured_loss_pct == 0
        assert r.measured_rtt_ms == pytest.approx(r.configured_rtt_ms, abs=1 + 0.15 * r.configured_rtt_ms)


def test_probe_measures_loss_and_the_rate_apart_from_tcp_goodput(emu):
    """Issue 12: on a 2 Mbit/s link with 1% loss the probe reported 1.58 Mbit/s of TCP goodput as the link's
    rate and no loss. Now: the loss (paced train), the rate the link carries (UDP train above the rate)
    and TCP goodput, which loss holds under the rate."""
    emu.set_link("device", "edge", bandwidth_mbps=2, loss_pct=3)
    try:
        results = [r for r in emu.probe(duration_s=2, count=3) if {r.a, r.b} == {"device", "edge"}]
    finally:
        emu.set_link("device", "edge", bandwidth_mbps=10, loss_pct=0)
    assert len(results) == 2
    for r in results:
        assert r.error is None and r.configured_loss_pct == 3
        assert 1.0 < r.measured_loss_pct < 6.0  # ~1000 datagrams at 3%: sd 0.5 points
        assert r.measured_rate_mbps == pytest.approx(2, rel=0.06)  # the link still carries its rate
        assert r.tcp_goodput_mbps < r.measured_rate_mbps


def test_set_link_rtt_and_loss_take_effect_within_a_second(emu):
    start = time.monotonic()
    emu.set_link("device", "edge", rtt_ms=60)
    assert time.monotonic() - start < 1.0
    assert _echo_rtt_ms(emu, "device", "edge") == pytest.approx(60, abs=1 + 6)
    emu.set_link("device", "edge", loss_pct=100)
    assert _echo_rtt_ms(emu, "device", "edge", timeout_s=0.2) == -1
    emu.set_link("device", "edge", rtt_ms=20, loss_pct=0)
    assert _echo_rtt_ms(emu, "device", "edge") == pytest.approx(20, abs=3)
    assert emu.spec.link("device", "edge").rtt_ms == 20


def test_set_link_bandwidth_changes_measured_throughput(emu):
    emu.set_link("edge", "cloud", bandwidth_mbps=5)
    try:
        forward = next(r for r in emu.probe(duration_s=1.2, count=3) if (r.a, r.b) == ("edge", "cloud"))
        assert forward.measured_mbps == pytest.approx(5, rel=0.15)
    finally:
        emu.set_link("edge", "cloud", bandwidth_mbps=50)


def test_cut_and_restore_link(emu):
    start = time.monotonic()
    emu.cut_link("device", "edge")
    assert time.monotonic() - start < 1.0
    assert _echo_rtt_ms(emu, "device", "edge", timeout_s=0.2) == -1
    assert _echo_rtt_ms(emu, "edge", "cloud") > 0  # other links unaffected
    assert emu.status().links[0].is_cut
    emu.restore_link("device", "edge")
    assert _echo_rtt_ms(emu, "device", "edge") == pytest.approx(20, abs=3)


def _cpu_usage_ns(emu, node: str) -> int:
    """The node cgroup's CPU time, read from the host: a `docker exec` to read it would run inside the
    cgroup and charge its own start-up to the figure (0.03 cores of an idle node on a slow host)."""
    from emulator.docker_backend import container_name

    cid = subprocess.run(["docker", "inspect", "-f", "{{.Id}}", container_name(emu.name, node)],
                         capture_output=True, text=True, check=True).stdout.strip()
    v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage")
    if v1.exists():
        return int(v1.read_text().strip())
    for v2 in (Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat"), Path(f"/sys/fs/cgroup/docker/{cid}/cpu.stat")):
        if v2.exists():
            usage = next(line for line in v2.read_text().splitlines() if line.startswith("usage_usec"))
            return int(usage.split()[1]) * 1000
    pytest.fail(f"no cgroup CPU counter for container {cid[:12]} on this host")


def _cores_used(emu, node: str, seconds: float) -> float:
    """CPU seconds the node's cgroup used per wall second, over an interval timed around the reads."""
    before, t0 = _cpu_usage_ns(emu, node), time.monotonic()
    time.sleep(seconds)
    after, t1 = _cpu_usage_ns(emu, node), time.monotonic()
    return (after - before) / 1e9 / (t1 - t0)


def test_cpu_limit_and_background_load(emu):
    """The quota caps the busy workers; the lower bounds are loose because other work shares this host."""
    from emulator import docker_backend

    emu.set_cpus("device", 0.25)
    assert docker_backend.node_info(emu.name, "device").cpus == pytest.approx(0.25)
    assert emu.start_load("device", workers=2) == 2
    time.sleep(0.3)
    assert 0.15 < _cores_used(emu, "device", 1.0) < 0.25 * 1.1 + 0.03
    emu.set_cpus("device", 0.5)
    time.sleep(0.2)
    assert 0.3 < _cores_used(emu, "device", 1.0) < 0.5 * 1.1 + 0.03
    emu.stop_load("device")
    time.sleep(0.3)
    assert _cores_used(emu, "device", 0.5) < 0.05
    assert emu.status().nodes[0].load_workers == 0


def test_stop_and_start_node_rewires_its_links(emu):
    start = time.monotonic()
    emu.stop_node("edge")
    assert time.monotonic() - start < 1.0
    assert [n.container_status for n in emu.status().nodes] == ["running", "exited", "running"]
    probe = emu.probe(duration_s=0, count=1)
    assert all(r.error and "edge is stopped" in r.error for r in probe)
    emu.set_link("device", "edge", rtt_ms=30)  # recorded now, applied when edge is wired again
    start = time.monotonic()
    emu.start_node("edge")
    assert time.monotonic() - start < 1.0
    emu.exec("edge", ["sh", "-c", f"python3 -c '{ECHO_SERVER}' >/dev/null 2>&1 &"])
    time.sleep(0.3)
    assert _echo_rtt_ms(emu, "device", "edge") == pytest.approx(30, abs=4)
    assert _echo_rtt_ms(emu, "cloud", "edge") == pytest.approx(10, abs=2)
    emu.set_link("device", "edge", rtt_ms=20)


def test_same_name_refused_and_second_topology_runs_side_by_side(emu, image, tmp_path):
    import yaml

    from emulator import Emulation, lifecycle

    with pytest.raises(AlreadyRunning, match=f"'{emu.name}' is already running"):
        lifecycle.up(_spec(emu.name), image=image)
    path = tmp_path / "same.yaml"
    path.write_text(yaml.safe_dump(_spec(emu.name).to_dict()))
    out = subprocess.run([sys.executable, "-m", "emulator.cli", "up", str(path), "--image", image],
                         capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"emulator: topology '{emu.name}' is already running; stop it with `emulator down {emu.name}` or rename it"
    ]
    assert emu.status().nodes[0].container_status == "running"  # the refused `up` touched nothing
    other = f"{PREFIX}-side"
    lifecycle.down(other)
    spec = _spec(other, nodes=[{"name": "edge", "tier": "edge", "cpus": 0.5, "memory": "256m"},
                               {"name": "cloud", "tier": "cloud", "cpus": 0.5, "memory": "256m"}],
                 links=[{"a": "edge", "b": "cloud", "bandwidth": "20mbit", "rtt": "40ms"}])  # fmt: skip
    with Emulation.up(spec, image=image) as side:
        side.exec("cloud", ["sh", "-c", f"python3 -c '{ECHO_SERVER}' >/dev/null 2>&1 &"])
        time.sleep(0.3)
        assert _echo_rtt_ms(side, "edge", "cloud") == pytest.approx(40, abs=5)
        assert _echo_rtt_ms(emu, "edge", "cloud") == pytest.approx(
            10, abs=2
        )  # same addresses, separate worlds
    assert _leftovers(other) == NOTHING
    lifecycle.down(other)  # idempotent
    assert _leftovers(other) == NOTHING


def test_down_cleans_what_a_crashed_run_left_behind(image):
    from emulator import lifecycle, state

    name = f"{PREFIX}-crash"
    lifecycle.down(name)
    lifecycle.up(_spec(name, nodes=[{"name": "edge", "tier": "edge", "cpus": 0.5, "memory": "256m"},
                                    {"name": "cloud", "tier": "cloud", "cpus": 0.5, "memory": "256m"}],
                       links=[{"a": "edge", "b": "cloud", "bandwidth": "20mbit", "rtt": "4ms"}]), image=image)  # fmt: skip
    state.remove_state_dir(name)  # as if the controller died before writing its state
    left = _leftovers(name)
    assert left["containers"] and left["netns"]
    assert name in lifecycle.running_names()
    out = subprocess.run(
        [sys.executable, "-m", "emulator.cli", "down", name], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert _leftovers(name) == NOTHING


def test_failure_during_up_leaves_nothing(image):
    from emulator import lifecycle

    name = f"{PREFIX}-fail"
    lifecycle.down(name)

    def interrupt(message: str) -> None:
        if message.startswith("link"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lifecycle.up(_spec(name), image=image, on_progress=interrupt)
    assert _leftovers(name) == NOTHING


def test_ctrl_c_during_cli_up_leaves_nothing(image, tmp_path):
    from emulator import docker_backend, lifecycle

    name = f"{PREFIX}-sigint"
    lifecycle.down(name)  # a failed earlier run's containers would make the wait below end at once
    path = tmp_path / "t.yaml"
    import yaml

    path.write_text(yaml.safe_dump(_spec(name).to_dict()))
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator.cli", "up", str(path), "--image", image],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not docker_backend.list_nodes(name) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:  # a failure above must not leave the CLI running into later tests
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["emulator: interrupted"]
    assert _leftovers(name) == NOTHING


def test_runtime_bad_input_is_refused(emu):
    with pytest.raises(TopologyError, match="no link device-cloud"):
        emu.set_link("device", "cloud", rtt_ms=5)
    with pytest.raises(TopologyError, match="bandwidth -1"):
        emu.set_link("device", "edge", bandwidth_mbps=-1)
    with pytest.raises(TopologyError, match="cpus 9"):
        emu.set_cpus("device", 9)
    with pytest.raises(TopologyError, match="no node 'fog'"):
        emu.stop_node("fog")


def test_probe_json_cli_has_the_issue_keys(emu):
    import json

    out = subprocess.run(
        [sys.executable, "-m", "emulator.cli", "probe", emu.name, "--json", "--duration-s", "0.6", "--count", "3"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 4
    for row in rows:
        assert {
            "a",
            "b",
            "configured_mbps",
            "configured_rtt_ms",
            "measured_mbps",
            "measured_rtt_ms",
            "mechanism",
            "configured_loss_pct",
            "measured_loss_pct",
            "measured_rate_mbps",
            "tcp_goodput_mbps",
        } <= set(row)
        assert row["measured_rtt_ms"] > 0


def test_nodes_have_no_route_beyond_their_links(emu):
    """No default route in any node: traffic cannot leave the project's own namespaces."""
    from emulator.runner import run
    from emulator.tc import node_netns

    for node, subnets in (("device", ["10.100.0.0/24"]), ("edge", ["10.100.0.0/24", "10.100.1.0/24"])):
        routes = run(["ip", "-n", node_netns(emu.name, node), "route", "show"]).strip().splitlines()
        assert sorted(r.split()[0] for r in routes) == subnets


BURST_CLIENT = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
n = int(sys.argv[2]); sent = {}
for i in range(n):
    sent[b"%d" % i] = time.perf_counter(); s.sendto(b"%d" % i, (sys.argv[1], 7007)); time.sleep(0.001)
rtts, end = [], time.perf_counter() + 0.5
s.settimeout(0.01)
while time.perf_counter() < end:
    try:
        d = s.recv(64); rtts.append((time.perf_counter() - sent[d]) * 1000)
    except TimeoutError:
        pass
print(len(rtts), min(rtts), max(rtts))
"""


def test_loss_and_jitter_are_applied(emu):
    """300 echoes: with 30% loss per direction about 0.7^2 = 49% come back; jitter spreads the RTTs."""
    assert _echo_rtt_ms(emu, "edge", "cloud") > 0  # neighbour resolved before any frame is dropped on purpose
    emu.set_link("edge", "cloud", loss_pct=30)
    try:
        rc, out = emu.exec("edge", ["python3", "-c", BURST_CLIENT, emu.address("cloud", "edge"), "300"])
        assert rc == 0, out
        replies = int(out.split()[0])
        assert 0.49 * 300 - 35 < replies < 0.49 * 300 + 35
        emu.set_link("edge", "cloud", loss_pct=0, jitter_ms=8)
        rc, out = emu.exec("edge", ["python3", "-c", BURST_CLIENT, emu.address("cloud", "edge"), "100"])
        count, low, high = out.split()
        assert int(count) >= 98  # jitter never drops
        assert float(low) >= 10 - 8 / 2 - 0.5 and float(high) - float(low) > 3
    finally:
        emu.set_link("edge", "cloud", loss_pct=0, jitter_ms=0)


def test_mechanism_choice_follows_the_kernel(image, tmp_path):
    """netem where the kernel has it, else tbf+delayline; forcing netem without sch_netem is refused up front."""
    import yaml

    from emulator.capabilities import detect

    caps = detect()
    assert caps.mechanism == ("netem" if caps.qdiscs["netem"] else "tbf+delayline")
    if caps.qdiscs["netem"]:
        return
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(_spec(f"{PREFIX}-netem").to_dict()))
    out = subprocess.run([sys.executable, "-m", "emulator.cli", "up", str(path), "--mechanism", "netem", "--image", image],
                         capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "emulator: --mechanism netem: this kernel has no sch_netem; use auto or delayline"
    ]
    assert _leftovers(f"{PREFIX}-netem") == NOTHING


def test_node_that_died_on_its_own_can_be_started_again(emu):
    from emulator import docker_backend

    docker_backend.stop_node(emu.name, "cloud")  # behind the emulator's back, like a crash
    assert emu.status().nodes[2].container_status == "exited"
    emu.start_node("cloud")  # re-wires at once, although the old link namespace is still being torn down
    emu.exec("cloud", ["sh", "-c", f"python3 -c '{ECHO_SERVER}' >/dev/null 2>&1 &"])
    time.sleep(0.3)
    assert _echo_rtt_ms(emu, "edge", "cloud") == pytest.approx(10, abs=2)


def _train(emu, src: str, dst: str, mbps: float, duration_s: float = 1.5) -> dict:
    """One paced UDP train src -> dst offered at mbps (full frames), with the probe agent as receiver."""
    import json

    from emulator.probe import AGENT_SOURCE

    opts = {"host": emu.address(dst, src), "mbps": mbps, "frame_bytes": 1514, "duration_s": duration_s,
            "timeout_s": 0.5}  # fmt: skip
    rc, out = emu.exec(src, ["python3", "-c", AGENT_SOURCE, "train", json.dumps(opts)])
    assert rc == 0, out
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("mbps", [2, 4, 25])
def test_excess_udp_is_dropped_at_the_link_not_pushed_back_at_the_sender(image, mbps):
    """Issue 12: UDP at 1.2x a 25 Mbit/s link's rate was not dropped: the tbf on the sender's own egress
    held more than the socket's send buffer, so the socket blocked (local back-pressure, which a real
    bottleneck does not give). At 100 ms the queue is a bandwidth-delay product (312 kB at 25 Mbit/s),
    where the old shaping blocked the sender. The sender must offer its full 1.2x and the link drop the
    excess (1 - 1/1.2 = 16.7%); TCP through the same link keeps its goodput."""
    from emulator import Emulation, lifecycle
    from emulator.probe import _start_agents, _stop_agents

    name = f"emu-excess-{mbps}"
    lifecycle.down(name)
    spec = _spec(name, nodes=[{"name": "edge", "tier": "edge", "cpus": 1.0, "memory": "256m"},
                              {"name": "cloud", "tier": "cloud", "cpus": 1.0, "memory": "256m"}],
                 links=[{"a": "edge", "b": "cloud", "bandwidth": f"{mbps}mbit", "rtt": "100ms"}])  # fmt: skip
    with Emulation.up(spec, image=image) as emu:
        _start_agents(name, ["edge", "cloud"])
        try:
            for src, dst in (("edge", "cloud"), ("cloud", "edge")):
                udp = _train(emu, src, dst, 1.2 * mbps)
                assert udp["offered_mbps"] > 1.15 * mbps, f"{src} -> {dst} pushed back: {udp}"
                # 16.7% of a long train; the queue (one bandwidth-delay product) absorbs part of a short one.
                # No upper bound: on a loaded host the user-space delay line itself falls behind and drops more.
                assert udp["loss_pct"] > 8, f"{src} -> {dst} excess not dropped: {udp}"
                assert 0.8 * mbps < udp["arrival_mbps"] < 1.05 * mbps, udp
        finally:
            _stop_agents(name, ["edge", "cloud"])
        # The bottleneck now drops as a real one does, so TCP's slow-start overshoot costs a loss recovery; at
        # 100 ms that takes seconds, and a 2.5 s probe measured 70% of 25 Mbit/s on the CI host while a 6 s
        # one measures 99% here: the window must be long against the RTT to measure the steady state.
        for r in emu.probe(duration_s=6.0, count=3):
            assert r.tcp_goodput_mbps > 0.8 * mbps, r
    assert _leftovers(name) == NOTHING


def test_sigkill_part_way_through_up_is_listed_as_broken_and_down_removes_it(image, tmp_path):
    """Issue 12: `emulator up` killed with SIGKILL part-way left containers, namespaces and delay lines that
    `status` did not list ("not running"). status now lists it as broken with the command that removes it."""
    import json

    import yaml

    from emulator import docker_backend, wiring

    name = "emu-sigkill"
    subprocess.run([sys.executable, "-m", "emulator.cli", "down", name], cwd=ROOT, check=True, capture_output=True)
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(_spec(name).to_dict()))
    proc = subprocess.Popen([sys.executable, "-m", "emulator.cli", "up", str(path), "--image", image], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 60
    while not wiring.delayline_pids(name) and not (proc.poll() is not None or time.monotonic() > deadline):
        time.sleep(0.01)  # containers exist and the first link is wired; the second is being wired
    proc.kill()
    proc.wait(timeout=10)
    try:
        left = _leftovers(name)
        assert len(left["containers"]) == 3 and left["netns"] and left["delaylines"] and left["state"], left
        out = subprocess.run([sys.executable, "-m", "emulator.cli", "status"], capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 0, out.stderr
        line = next(line for line in out.stdout.splitlines() if line.startswith(name))
        assert "BROKEN" in line and f"`emulator down {name}`" in line and "3 container(s)" in line, out.stdout
        out = subprocess.run([sys.executable, "-m", "emulator.cli", "status", name, "--json"], capture_output=True,
                             text=True, cwd=ROOT)  # fmt: skip
        assert out.returncode == 1, out.stderr  # broken: not usable
        (st,) = json.loads(out.stdout)
        assert st["condition"] == "broken" and st["remedy"] == f"emulator down {name}"
        assert sorted(st["leftovers"]["containers"]) == sorted(c.name for c in docker_backend.list_nodes(name))
    finally:
        out = subprocess.run([sys.executable, "-m", "emulator.cli", "down", name], capture_output=True, text=True,
                             cwd=ROOT)  # fmt: skip
    assert out.returncode == 0 and out.stdout.strip() == f"down: {name}", out
    assert _leftovers(name) == NOTHING
    out = subprocess.run([sys.executable, "-m", "emulator.cli", "status", name], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and f"topology '{name}' is not running" in out.stderr
