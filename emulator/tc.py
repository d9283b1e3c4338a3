"""Link shape to argv lists (pure): naming, addressing, wiring, tc qdiscs and the delay-line command.

Commands are data first (like Mininet's TCIntf builds its tc list before running it), so `up --dry-run`
can print them and golden tests can compare them. Two mechanisms:

- "netem": a veth pair joins the two containers directly; each end's egress gets
  `netem delay rtt/2 [jitter] [loss] rate R`. Used where the kernel has sch_netem. netem releases a
  queued frame's socket-memory charge (skb_orphan_partial in netem_enqueue), so a sender above the
  rate is not held back by its own egress: the excess is dropped at netem's limit, as at a bottleneck.
- "tbf+delayline": each container gets a veth into a per-link "wire" namespace where a user-space
  delay line (emulator/delayline.py) holds every frame for rtt/2 (+jitter, drop with loss) and writes
  it to the other wire port, whose egress has a tbf at the link rate. The tbf is on the wire, not on
  the sender's egress: a frame queued in a tbf stays charged to its socket (across a veth too), so a
  tbf in the sender's path blocked a UDP sender above the rate instead of dropping (issue 12); the
  delay line's copy ends that charge at the wire's first port. Offloads are switched off so frames
  stay MTU-sized and carry full checksums through the raw sockets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from emulator.topology import LinkSpec, TopologySpec
from scission.units import mbps_to_bytes_per_s

__all__ = [
    "MECHANISMS",
    "LinkPlan",
    "Port",
    "delayline_argv",
    "link_plans",
    "node_netns",
    "render_shape",
    "render_teardown",
    "render_wiring",
    "tbf_argv",
    "tbf_params",
    "netem_argv",
    "wire_netns",
]

NETEM = "netem"
DELAYLINE = "tbf+delayline"
MECHANISMS = (NETEM, DELAYLINE)
WIRE_PORT_A, WIRE_PORT_B = "pa", "pb"
MTU_BYTES = 1500
FRAME_BYTES = MTU_BYTES + 14
# No IPv6 on emulated links: router solicitations and MLD reports would be stray traffic in every probe.
IPV6_OFF = ("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
OFFLOADS_OFF = ("tso", "off", "gso", "off", "gro", "off", "tx", "off", "rx", "off")


def node_netns(topology: str, node: str) -> str:
    """Named-netns alias (/run/netns/<this>, a symlink) for a node container's network namespace.

    Dots separate the parts because names may contain '-' but never '.', so prefixes never collide.
    """
    return f"emu.{topology}.{node}"


def wire_netns(topology: str, index: int) -> str:
    return f"emu.{topology}.link{index}"


@dataclass(frozen=True)
class Port:
    """One container-side end of a link: the interface inside the node and its address."""

    node: str
    netns: str
    ifname: str
    address: str
    prefix_len: int = 24


@dataclass(frozen=True)
class LinkPlan:
    """Everything needed to wire and shape one link; derived from the spec, so it is stable across runs."""

    index: int
    a: Port
    b: Port
    mechanism: str
    wire_netns: str

    def port(self, node: str) -> Port:
        if node == self.a.node:
            return self.a
        if node == self.b.node:
            return self.b
        raise KeyError(node)

    @property
    def label(self) -> str:
        return f"{self.a.node}-{self.b.node}"


def link_plans(spec: TopologySpec, mechanism: str) -> tuple[LinkPlan, ...]:
    """Name interfaces eth0.. per node in link order and give link i the subnet 10.(100+i//256).(i%256).0/24.

    Each node lives in its own namespace with no route elsewhere, so addresses only need to be unique
    per node; two topologies can reuse them side by side.
    """
    if mechanism not in MECHANISMS:
        raise ValueError(f"mechanism {mechanism!r} is not one of {', '.join(MECHANISMS)}")
    next_if: dict[str, int] = {n.name: 0 for n in spec.nodes}
    plans = []
    for i, link in enumerate(spec.links):
        net = f"10.{100 + i // 256}.{i % 256}"
        ports = []
        for node, host in ((link.a, 1), (link.b, 2)):
            ports.append(Port(node, node_netns(spec.name, node), f"eth{next_if[node]}", f"{net}.{host}"))
            next_if[node] += 1
        plans.append(LinkPlan(i, ports[0], ports[1], mechanism, wire_netns(spec.name, i)))
    return tuple(plans)


def _kbit(bandwidth_mbps: float) -> str:
    return f"{max(1, round(bandwidth_mbps * 1000))}kbit"


def tbf_params(bandwidth_mbps: float, rtt_ms: float) -> tuple[int, int]:
    """(burst_bytes, limit_bytes) for a tbf at this rate.

    Burst: 2 ms of traffic, at least two full frames, so the rate holds with coarse timers.
    Limit: one bandwidth-delay product, at least 16 frames, so TCP can fill the pipe without the
    queue adding much more than one RTT of delay.
    """
    bytes_per_s = mbps_to_bytes_per_s(bandwidth_mbps)
    burst = max(2 * FRAME_BYTES, math.ceil(bytes_per_s * 0.002))
    limit = max(16 * FRAME_BYTES, math.ceil(bytes_per_s * max(rtt_ms, 1.0) / 1000))
    return burst, limit


def tbf_argv(netns: str, ifname: str, bandwidth_mbps: float, rtt_ms: float) -> list[str]:
    burst, limit = tbf_params(bandwidth_mbps, rtt_ms)
    return [
        "tc", "-n", netns, "qdisc", "replace", "dev", ifname, "root", "handle", "1:",
        "tbf", "rate", _kbit(bandwidth_mbps), "burst", str(burst), "limit", str(limit),
    ]  # fmt: skip


def netem_argv(netns: str, ifname: str, link: LinkSpec, *, is_cut: bool = False) -> list[str]:
    """netem does delay, jitter, loss and rate in one qdisc; a cut link is 100% loss."""
    argv = ["tc", "-n", netns, "qdisc", "replace", "dev", ifname, "root", "handle", "1:", "netem"]
    argv += ["delay", f"{link.one_way_delay_ms:g}ms"]
    if link.jitter_ms > 0:
        argv += [f"{link.jitter_ms / 2:g}ms"]
    loss_pct = 100.0 if is_cut else link.loss_pct
    if loss_pct > 0:
        argv += ["loss", f"{loss_pct:g}%"]
    # netem's limit (packets) covers frames in their delay plus the rate queue: about one BDP each.
    _, limit_bytes = tbf_params(link.bandwidth_mbps, link.rtt_ms)
    argv += ["rate", _kbit(link.bandwidth_mbps), "limit", str(2 * math.ceil(limit_bytes / FRAME_BYTES) + 16)]
    return argv


def render_shape(plan: LinkPlan, link: LinkSpec, *, is_cut: bool = False) -> list[list[str]]:
    """The tc commands that (re)apply a link's shape on both directions; also used for runtime changes.

    netem: on each container's egress. Delay line: a tbf on each wire port's egress, the port towards b
    (pb) shaping a -> b; rtt/jitter/loss/cut live in the delay line process, so only the rate is tc's.
    Jitter is split half per direction, like rtt, so the round trip varies by about jitter_ms.
    """
    if plan.mechanism == NETEM:
        return [
            netem_argv(plan.a.netns, plan.a.ifname, link, is_cut=is_cut),
            netem_argv(plan.b.netns, plan.b.ifname, link, is_cut=is_cut),
        ]
    w = plan.wire_netns
    return [
        tbf_argv(w, WIRE_PORT_B, link.bandwidth_mbps, link.rtt_ms),
        tbf_argv(w, WIRE_PORT_A, link.bandwidth_mbps, link.rtt_ms),
    ]


def _port_setup(port: Port) -> list[list[str]]:
    return [
        ["ip", "-n", port.netns, "addr", "add", f"{port.address}/{port.prefix_len}", "dev", port.ifname],
        ["ip", "-n", port.netns, "link", "set", port.ifname, "mtu", str(MTU_BYTES), "up"],
    ]


def render_wiring(plan: LinkPlan) -> list[list[str]]:
    """Create the veths, move them into place, address them and switch offloads off (delay line only)."""
    a, b = plan.a, plan.b
    if plan.mechanism == NETEM:
        return [
            ["ip", "netns", "exec", a.netns, *IPV6_OFF],
            ["ip", "netns", "exec", b.netns, *IPV6_OFF],
            ["ip", "-n", a.netns, "link", "add", a.ifname, "type", "veth", "peer", "name", b.ifname, "netns", b.netns],
            *_port_setup(a),
            *_port_setup(b),
        ]  # fmt: skip
    w = plan.wire_netns
    return [
        ["ip", "netns", "add", w],
        ["ip", "netns", "exec", w, *IPV6_OFF],
        ["ip", "netns", "exec", a.netns, *IPV6_OFF],
        ["ip", "netns", "exec", b.netns, *IPV6_OFF],
        ["ip", "-n", w, "link", "add", WIRE_PORT_A, "type", "veth", "peer", "name", a.ifname, "netns", a.netns],
        ["ip", "-n", w, "link", "add", WIRE_PORT_B, "type", "veth", "peer", "name", b.ifname, "netns", b.netns],
        ["ip", "netns", "exec", w, "ethtool", "-K", WIRE_PORT_A, *OFFLOADS_OFF],
        ["ip", "netns", "exec", w, "ethtool", "-K", WIRE_PORT_B, *OFFLOADS_OFF],
        ["ip", "netns", "exec", a.netns, "ethtool", "-K", a.ifname, *OFFLOADS_OFF],
        ["ip", "netns", "exec", b.netns, "ethtool", "-K", b.ifname, *OFFLOADS_OFF],
        ["ip", "-n", w, "link", "set", WIRE_PORT_A, "mtu", str(MTU_BYTES), "up"],
        ["ip", "-n", w, "link", "set", WIRE_PORT_B, "mtu", str(MTU_BYTES), "up"],
        *_port_setup(a),
        *_port_setup(b),
    ]  # fmt: skip


def render_teardown(plan: LinkPlan) -> list[list[str]]:
    """Deleting one veth end deletes its peer at once. The wire veths are deleted explicitly because a
    namespace is torn down asynchronously, and a re-wire right after must not find the old interfaces."""
    if plan.mechanism == NETEM:
        return [["ip", "-n", plan.a.netns, "link", "del", plan.a.ifname]]
    w = plan.wire_netns
    return [
        ["ip", "-n", w, "link", "del", WIRE_PORT_A],
        ["ip", "-n", w, "link", "del", WIRE_PORT_B],
        ["ip", "netns", "delete", w],
    ]


def delayline_argv(
    plan: LinkPlan, topology: str, python: str, script: str, control_path: str, link: LinkSpec, seed: int
) -> list[str]:
    """The delay line runs inside the wire namespace; --topology/--link label it for cleanup by label."""
    return [
        "ip", "netns", "exec", plan.wire_netns, python, "-u", script,
        "--topology", topology, "--link", str(plan.index),
        "--port-a", WIRE_PORT_A, "--port-b", WIRE_PORT_B,
        "--delay-ms", f"{link.one_way_delay_ms:g}", "--jitter-ms", f"{link.jitter_ms / 2:g}",
        "--loss-pct", f"{link.loss_pct:g}", "--control", control_path, "--seed", str(seed),
    ]  # fmt: skip
