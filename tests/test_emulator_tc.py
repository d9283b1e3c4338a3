"""tc/ip rendering: golden argv tables, one row per case (commands are data before they run)."""

from __future__ import annotations

import pytest

from emulator.tc import (
    DELAYLINE,
    NETEM,
    delayline_argv,
    link_plans,
    netem_argv,
    render_shape,
    render_teardown,
    render_wiring,
    tbf_argv,
    tbf_params,
)
from emulator.topology import LinkSpec, topology_from_dict

SPEC = topology_from_dict(
    {
        "name": "t",
        "nodes": [
            {"name": "device", "tier": "device", "cpus": 0.5, "memory": "256m"},
            {"name": "edge", "tier": "edge", "cpus": 1, "memory": "256m"},
            {"name": "cloud", "tier": "cloud", "cpus": 1, "memory": "256m"},
        ],
        "links": [
            {"a": "device", "b": "edge", "bandwidth": "10mbit", "rtt": "20ms", "jitter": "2ms", "loss": "1%"},
            {"a": "edge", "b": "cloud", "bandwidth": "50mbit", "rtt": "20ms"},
        ],
    }
)
OFF = ["tso", "off", "gso", "off", "gro", "off", "tx", "off", "rx", "off"]
V6 = ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]


def test_plans_name_interfaces_per_node_and_give_each_link_a_subnet():
    plans = link_plans(SPEC, DELAYLINE)
    assert [(p.a.node, p.a.ifname, p.a.address, p.b.node, p.b.ifname, p.b.address) for p in plans] == [
        ("device", "eth0", "10.100.0.1", "edge", "eth0", "10.100.0.2"),
        ("edge", "eth1", "10.100.1.1", "cloud", "eth0", "10.100.1.2"),
    ]
    assert [p.wire_netns for p in plans] == ["emu.t.link0", "emu.t.link1"]
    assert plans[0].a.netns == "emu.t.device"


@pytest.mark.parametrize(
    ("bandwidth_mbps", "rtt_ms", "burst", "limit"),
    [
        (1.0, 100.0, 3028, 24224),  # floors: two frames of burst, 16 frames of queue
        (10.0, 20.0, 3028, 25000),  # one bandwidth-delay product of queue
        (50.0, 20.0, 12500, 125000),  # 2 ms of burst
        (1000.0, 1.0, 250000, 125000),
    ],
)
def test_tbf_params(bandwidth_mbps, rtt_ms, burst, limit):
    assert tbf_params(bandwidth_mbps, rtt_ms) == (burst, limit)


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        (
            LinkSpec("device", "edge", 1.6, 66.7),
            ["tc", "-n", "emu.t.device", "qdisc", "replace", "dev", "eth0", "root", "handle", "1:", "tbf", "rate",
             "1600kbit", "burst", "3028", "limit", "24224"],
        ),
        (
            LinkSpec("device", "edge", 50, 20),
            ["tc", "-n", "emu.t.device", "qdisc", "replace", "dev", "eth0", "root", "handle", "1:", "tbf", "rate",
             "50000kbit", "burst", "12500", "limit", "125000"],
        ),
    ],
)  # fmt: skip
def test_tbf_argv(link, expected):
    port = link_plans(SPEC, DELAYLINE)[0].a
    assert tbf_argv(port.netns, port.ifname, link.bandwidth_mbps, link.rtt_ms) == expected


@pytest.mark.parametrize(
    ("link", "is_cut", "tail"),
    [
        (LinkSpec("device", "edge", 10, 20), False, ["delay", "10ms", "rate", "10000kbit", "limit", "50"]),
        (LinkSpec("device", "edge", 10, 20, 2, 1), False,
         ["delay", "10ms", "1ms", "loss", "1%", "rate", "10000kbit", "limit", "50"]),
        (LinkSpec("device", "edge", 10, 20, 0, 1), True, ["delay", "10ms", "loss", "100%", "rate", "10000kbit", "limit", "50"]),
        (LinkSpec("device", "edge", 1.6, 100), False, ["delay", "50ms", "rate", "1600kbit", "limit", "48"]),
    ],
)  # fmt: skip
def test_netem_argv(link, is_cut, tail):
    port = link_plans(SPEC, NETEM)[0].a
    head = ["tc", "-n", "emu.t.device", "qdisc", "replace", "dev", "eth0", "root", "handle", "1:", "netem"]
    assert netem_argv(port.netns, port.ifname, link, is_cut=is_cut) == head + tail


def test_delayline_wiring_golden():
    plan = link_plans(SPEC, DELAYLINE)[1]
    assert render_wiring(plan) == [
        ["ip", "netns", "add", "emu.t.link1"],
        ["ip", "netns", "exec", "emu.t.link1", *V6],
        ["ip", "netns", "exec", "emu.t.edge", *V6],
        ["ip", "netns", "exec", "emu.t.cloud", *V6],
        ["ip", "-n", "emu.t.link1", "link", "add", "pa", "type", "veth", "peer", "name", "eth1", "netns", "emu.t.edge"],
        ["ip", "-n", "emu.t.link1", "link", "add", "pb", "type", "veth", "peer", "name", "eth0", "netns", "emu.t.cloud"],
        ["ip", "netns", "exec", "emu.t.link1", "ethtool", "-K", "pa", *OFF],
        ["ip", "netns", "exec", "emu.t.link1", "ethtool", "-K", "pb", *OFF],
        ["ip", "netns", "exec", "emu.t.edge", "ethtool", "-K", "eth1", *OFF],
        ["ip", "netns", "exec", "emu.t.cloud", "ethtool", "-K", "eth0", *OFF],
        ["ip", "-n", "emu.t.link1", "link", "set", "pa", "mtu", "1500", "up"],
        ["ip", "-n", "emu.t.link1", "link", "set", "pb", "mtu", "1500", "up"],
        ["ip", "-n", "emu.t.edge", "addr", "add", "10.100.1.1/24", "dev", "eth1"],
        ["ip", "-n", "emu.t.edge", "link", "set", "eth1", "mtu", "1500", "up"],
        ["ip", "-n", "emu.t.cloud", "addr", "add", "10.100.1.2/24", "dev", "eth0"],
        ["ip", "-n", "emu.t.cloud", "link", "set", "eth0", "mtu", "1500", "up"],
    ]  # fmt: skip
    assert render_teardown(plan) == [
        ["ip", "-n", "emu.t.link1", "link", "del", "pa"],
        ["ip", "-n", "emu.t.link1", "link", "del", "pb"],
        ["ip", "netns", "delete", "emu.t.link1"],
    ]


def test_netem_wiring_golden():
    plan = link_plans(SPEC, NETEM)[0]
    assert render_wiring(plan) == [
        ["ip", "netns", "exec", "emu.t.device", *V6],
        ["ip", "netns", "exec", "emu.t.edge", *V6],
        ["ip", "-n", "emu.t.device", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", "emu.t.edge"],
        ["ip", "-n", "emu.t.device", "addr", "add", "10.100.0.1/24", "dev", "eth0"],
        ["ip", "-n", "emu.t.device", "link", "set", "eth0", "mtu", "1500", "up"],
        ["ip", "-n", "emu.t.edge", "addr", "add", "10.100.0.2/24", "dev", "eth0"],
        ["ip", "-n", "emu.t.edge", "link", "set", "eth0", "mtu", "1500", "up"],
    ]  # fmt: skip
    assert render_teardown(plan) == [["ip", "-n", "emu.t.device", "link", "del", "eth0"]]


def test_tbf_shapes_on_the_wire_never_on_a_senders_own_egress():
    """Issue 12: a tbf in the sender's namespace keeps each queued frame charged to the sending socket, so
    UDP above the rate blocked the sender instead of being dropped. The delay line's tbfs sit on the wire
    ports, after the delay line's copy, the port towards b shaping a -> b. (netem stays on the container
    egress: it releases a queued frame's socket charge itself.)"""
    for plan, link in zip(link_plans(SPEC, DELAYLINE), SPEC.links, strict=True):
        commands = render_shape(plan, link)
        assert [(c[2], c[6]) for c in commands] == [(plan.wire_netns, "pb"), (plan.wire_netns, "pa")]
        assert not any(argv[0] == "tc" and argv[2] in {plan.a.netns, plan.b.netns} for argv in render_wiring(plan))


@pytest.mark.parametrize("mechanism", [NETEM, DELAYLINE])
def test_shape_covers_both_directions(mechanism):
    plan = link_plans(SPEC, mechanism)[0]
    commands = render_shape(plan, SPEC.links[0])
    expected = {NETEM: [("emu.t.device", "eth0"), ("emu.t.edge", "eth0")],
                DELAYLINE: [("emu.t.link0", "pb"), ("emu.t.link0", "pa")]}[mechanism]  # fmt: skip
    assert [(c[2], c[6]) for c in commands] == expected
    assert all(c[:2] == ["tc", "-n"] for c in commands)


def test_delay_line_gets_half_the_rtt_and_jitter_and_its_labels():
    plan = link_plans(SPEC, DELAYLINE)[0]
    argv = delayline_argv(plan, "t", "/py", "/d.py", "/run/x.json", SPEC.links[0], 7)
    assert argv == [
        "ip", "netns", "exec", "emu.t.link0", "/py", "-u", "/d.py", "--topology", "t", "--link", "0",
        "--port-a", "pa", "--port-b", "pb", "--delay-ms", "10", "--jitter-ms", "1", "--loss-pct", "1",
        "--control", "/run/x.json", "--seed", "7",
    ]  # fmt: skip


def test_unknown_mechanism_is_refused():
    with pytest.raises(ValueError, match="mechanism 'fast'"):
        link_plans(SPEC, "fast")
