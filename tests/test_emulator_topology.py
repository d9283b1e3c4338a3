"""Topology files: shipped files load, units are explicit, and every bad input names its field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from emulator.errors import EmulatorError, TopologyError
from emulator.topology import (
    LinkSpec,
    NodeSpec,
    TopologySpec,
    check_fits_host,
    load_topology,
    parse_bandwidth_mbps,
    parse_duration_ms,
    topology_from_dict,
)

ROOT = Path(__file__).resolve().parents[1]
TOPOLOGIES = sorted((ROOT / "topologies").glob("*.yaml"))


def _doc(**overrides):
    doc = {
        "name": "t",
        "nodes": [
            {"name": "device", "tier": "device", "cpus": 0.5, "memory": "256m"},
            {"name": "edge", "tier": "edge", "cpus": 1, "memory": "1g"},
        ],
        "links": [{"a": "device", "b": "edge", "bandwidth": "10mbit", "rtt": "20ms"}],
    }
    doc.update(overrides)
    return doc


@pytest.mark.parametrize("path", TOPOLOGIES, ids=lambda p: p.stem)
def test_every_shipped_topology_loads_and_fits_this_host(path):
    spec = load_topology(path)
    assert spec.name == path.stem
    check_fits_host(spec, host_cpus=2)


def test_at_least_the_issue_topologies_ship():
    names = {p.stem for p in TOPOLOGIES}
    assert {"three-tier-wifi", "three-tier-wired"} <= names
    multi = [
        load_topology(p)
        for p in TOPOLOGIES
        if len([n for n in load_topology(p).nodes if n.tier == "device"]) > 1
    ]
    assert multi, "a multi-device topology must ship"
    edges = [n.name for n in multi[0].nodes if n.tier == "edge"]
    assert len(edges) == 1 and all(
        multi[0].link(d.name, edges[0]) for d in multi[0].nodes if d.tier == "device"
    )


@pytest.mark.parametrize(
    ("stem", "a", "b", "bandwidth_mbps", "rtt_ms"),
    [
        ("three-tier-wifi", "device", "edge", 1.6, 66.7),
        ("three-tier-wifi", "cloud", "device", 1.6, 100.0),
        ("three-tier-wifi", "edge", "cloud", 50.0, 20.0),
        ("three-tier-wired", "device", "edge", 20.0, 20.0),
        ("three-tier-wired", "device", "cloud", 20.0, 45.0),
        ("three-tier-wired", "cloud", "edge", 50.0, 20.0),
    ],
)
def test_legacy_tables_are_matched(stem, a, b, bandwidth_mbps, rtt_ms):
    link = load_topology(ROOT / "topologies" / f"{stem}.yaml").link(a, b)
    assert (link.bandwidth_mbps, link.rtt_ms) == (bandwidth_mbps, rtt_ms)


def test_spec_lookup_either_order_and_absent():
    spec = topology_from_dict(_doc())
    assert (
        spec.link("edge", "device") == spec.link("device", "edge") == LinkSpec("device", "edge", 10.0, 20.0)
    )
    assert spec.link("device", "nowhere") is None
    assert spec.node("edge") == NodeSpec("edge", "edge", 1.0, 1024**3)
    assert spec.node("nowhere") is None
    assert isinstance(spec, TopologySpec) and spec.link("device", "edge").one_way_delay_ms == 10.0


def test_round_trip_through_to_dict():
    spec = topology_from_dict(
        _doc(
            links=[
                {
                    "a": "device",
                    "b": "edge",
                    "bandwidth": "1.6mbit",
                    "rtt": "66.7ms",
                    "jitter": "2ms",
                    "loss": "1.5%",
                }
            ]
        )
    )
    assert topology_from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("text", "mbps"), [("1.6mbit", 1.6), ("500kbit", 0.5), ("1gbit", 1000.0), ("20 Mbit", 20.0)]
)
def test_bandwidth_units(text, mbps):
    assert parse_bandwidth_mbps(text) == pytest.approx(mbps)


@pytest.mark.parametrize(("text", "ms"), [("66.7ms", 66.7), ("0.1s", 100.0), ("500us", 0.5)])
def test_duration_units(text, ms):
    assert parse_duration_ms(text) == pytest.approx(ms)


BAD = [
    (
        _doc(links=[{"a": "device", "b": "fog", "bandwidth": "1mbit", "rtt": "1ms"}]),
        "links[0].b: unknown node 'fog'",
    ),
    (
        _doc(links=[{"a": "device", "b": "edge", "bandwidth": 20, "rtt": "1ms"}]),
        "links[0].bandwidth: '20' has no unit; use kbit/s, Mbit/s",
    ),
    (
        _doc(links=[{"a": "device", "b": "edge", "bandwidth": "0mbit", "rtt": "1ms"}]),
        "links[0].bandwidth: '0mbit' must be greater than zero",
    ),
    (_doc(links=[{"a": "device", "b": "edge", "bandwidth": "-3mbit", "rtt": "1ms"}]), "links[0].bandwidth:"),
    (
        _doc(links=[{"a": "device", "b": "edge", "bandwidth": "1mbit", "rtt": 20}]),
        "links[0].rtt: '20' has no unit",
    ),
    (_doc(links=[{"a": "device", "b": "edge", "bandwidth": "1mbps", "rtt": "1ms"}]), "unit 'mbps' is ambiguous"),
    (
        _doc(links=[{"a": "device", "b": "edge", "bandwidth": "1mbit", "rtt": "1ms", "loss": "140%"}]),
        "links[0].loss: '140%' outside 0-100%",
    ),
    (
        _doc(nodes=[{"name": "edge", "tier": "edge", "cpus": 1, "memory": "1g"}] * 2, links=[]),
        "nodes[1].name: duplicate node name 'edge'",
    ),
    (
        _doc(links=[{"a": "device", "b": "edge", "bandwidth": "1mbit", "rtt": "1ms"}] * 2),
        "links[1]: duplicate link",
    ),
    (
        _doc(nodes=[{"name": "edge", "tier": "fog", "cpus": 1, "memory": "1g"}], links=[]),
        "nodes[0].tier: 'fog'",
    ),
    (_doc(nodes=[{"name": "edge", "tier": "edge", "cpus": 0, "memory": "1g"}], links=[]), "nodes[0].cpus:"),
    (
        _doc(nodes=[{"name": "edge", "tier": "edge", "cpus": 1, "memory": 1024}], links=[]),
        "nodes[0].memory: '1024' has no unit",
    ),
    (
        _doc(nodes=[{"name": "edge", "tier": "edge", "cpus": 1, "memory": "1g", "gpu": 1}], links=[]),
        "nodes[0].gpu: is not a known field",
    ),
    (_doc(name="Bad Name"), "name 'Bad Name'"),
]


@pytest.mark.parametrize(("doc", "expected"), BAD, ids=[b[1][:40] for b in BAD])
def test_bad_input_names_the_field(tmp_path, doc, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    message = str(info.value)
    assert expected in message and "\n" not in message
    assert message.startswith(str(path))
    assert isinstance(info.value, EmulatorError)


def test_more_cpus_than_the_host_has_is_refused():
    spec = topology_from_dict(
        _doc(nodes=[{"name": "edge", "tier": "edge", "cpus": 3, "memory": "1g"}], links=[])
    )
    with pytest.raises(TopologyError, match=r"nodes\[0\].cpus: 3 for node edge is more than the 2 cpus"):
        check_fits_host(spec, host_cpus=2)


def test_cpu_limit_message_names_the_file(tmp_path):
    """Checked after loading (the host's core count is not in the file), yet named like every other message."""
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(_doc(nodes=[{"name": "edge", "tier": "edge", "cpus": 3, "memory": "1g"}], links=[])))
    spec = load_topology(path)
    with pytest.raises(TopologyError) as info:
        check_fits_host(spec, host_cpus=2)
    assert str(info.value) == f"{path}: nodes[0].cpus: 3 for node edge is more than the 2 cpus this host has"
    assert spec == topology_from_dict(yaml.safe_load(path.read_text()))  # the file name is not part of equality


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(TopologyError, match="does not exist"):
        load_topology(tmp_path / "nope.yaml")
    (tmp_path / "x.yaml").write_text("name: [unclosed\n")
    with pytest.raises(TopologyError, match="not valid YAML"):
        load_topology(tmp_path / "x.yaml")


def test_pure_modules_do_not_import_docker():
    code = "import sys, emulator.topology, emulator.tc, emulator.errors, emulator.state; print('docker' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_public_names_are_complete_and_resolve():
    import importlib

    import emulator

    for name in emulator.__all__:
        assert getattr(emulator, name) is not None
    for module in ("topology", "tc", "errors", "state", "runner", "capabilities", "wiring", "lifecycle",
                   "actions", "probe", "emulation", "image", "docker_backend", "doctor"):  # fmt: skip
        mod = importlib.import_module(f"emulator.{module}")
        for name in getattr(mod, "__all__", ()):
            assert hasattr(mod, name), f"emulator.{module}.__all__ names missing {name}"


def test_only_the_backend_imports_the_docker_sdk():
    import re

    pattern = re.compile(r"^\s*(import docker\b|from docker\b)", re.MULTILINE)
    users = sorted(p.name for p in (ROOT / "emulator").glob("*.py") if pattern.search(p.read_text()))
    assert users == ["docker_backend.py"]


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_names = st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True)


@st.composite
def _specs(draw):
    names = draw(st.lists(_names, min_size=1, max_size=5, unique=True))
    nodes = tuple(
        NodeSpec(n, draw(st.sampled_from(["device", "edge", "cloud"])), draw(st.sampled_from([0.25, 0.5, 1.0, 2.0])),
                 draw(st.integers(64, 4096)) * 1024**2)
        for n in names
    )  # fmt: skip
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=len(pairs))) if pairs else []
    links = tuple(
        LinkSpec(a, b, draw(st.integers(1, 10_000_000)) / 1000, draw(st.integers(0, 500_000)) / 1000,
                 draw(st.integers(0, 50_000)) / 1000, draw(st.integers(0, 10_000)) / 100)
        for a, b in chosen
    )  # fmt: skip
    return TopologySpec(draw(_names), nodes, links)


@settings(max_examples=200, deadline=None)
@given(_specs())
def test_any_valid_spec_round_trips_through_its_file_form(spec):
    """to_dict writes units (kbit, ms, %, m) that load back to the same spec: state files rely on it."""
    assert topology_from_dict(yaml.safe_load(yaml.safe_dump(spec.to_dict()))) == spec
