"""One unit grammar (issue 12 point 3): every unit round-trips, bits and bytes stay apart, MB is not MiB,
and each trip-up the issue found is caught through the real loaders (sweep, simulation, topology, CLIs)."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import yaml
from conftest import REPO
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.errors import TopologyError
from emulator.topology import load_topology, topology_from_dict
from scission.quantities import (
    DIMENSIONS,
    QuantityError,
    format_quantity,
    parse_fraction,
    parse_quantity,
    parse_rate_mbps,
    parse_size_bytes,
)
from testbed.errors import SimulationFileError, SweepError, TraceError
from testbed.sim.conditions import build_trace
from testbed.sim.spec import load_simulation, simulation_from_dict
from testbed.sweep.spec import load_sweep

BASE_SIM = REPO / "experiments" / "sim-legacy-partition.yaml"
UNITS = [(dim, unit) for dim, d in DIMENSIONS.items() for unit in d.units]


# ----------------------------------------------------------------------------------- the grammar


@settings(max_examples=300, deadline=None)
@given(unit=st.sampled_from(UNITS), amount=st.floats(1e-6, 1e9, allow_nan=False, allow_infinity=False))
def test_every_unit_round_trips(unit, amount):
    dim, spelling = unit
    text = format_quantity(amount, dim, spelling)
    assert text.endswith(spelling)
    assert math.isclose(parse_quantity(text, dim), amount, rel_tol=1e-12)


@settings(max_examples=200, deadline=None)
@given(x=st.floats(1e-3, 1e6, allow_nan=False), prefix=st.sampled_from(["k", "M", "G"]))
def test_bytes_per_second_are_eight_bits_per_second(x, prefix):
    bits = parse_rate_mbps(f"{x!r}{prefix}bit/s")
    big = {"k": "K", "M": "M", "G": "G"}[prefix]  # kB/s and KB/s are both 1000 bytes/s
    for spelling in (f"{prefix}B/s" if prefix != "k" else "kB/s", f"{big}Bps", f"{big}B/s"):
        assert math.isclose(parse_rate_mbps(f"{x!r}{spelling}"), 8 * bits, rel_tol=1e-12)
    assert math.isclose(parse_rate_mbps(f"{x!r}{prefix if prefix != 'k' else 'K'}bps"), bits, rel_tol=1e-12)


@settings(max_examples=200, deadline=None)
@given(x=st.floats(1e-3, 1e6, allow_nan=False), prefix=st.sampled_from(["K", "M", "G"]))
def test_binary_and_decimal_sizes_differ_by_their_factor(x, prefix):
    power = {"K": 1, "M": 2, "G": 3}[prefix]
    decimal = parse_size_bytes(f"{x!r}{prefix if prefix != 'K' else 'k'}B")
    binary = parse_size_bytes(f"{x!r}{prefix}iB")
    assert math.isclose(binary / decimal, (1024 / 1000) ** power, rel_tol=1e-12)
    assert parse_size_bytes(f"{x!r}{prefix.lower()}") == binary  # Docker's shorthand is binary
    assert math.isclose(parse_rate_mbps(f"{x!r}{prefix}iB/s") / parse_rate_mbps(f"{x!r}{'kMG'['KMG'.index(prefix)]}B/s"),
                        (1024 / 1000) ** power, rel_tol=1e-12)


@pytest.mark.parametrize(("text", "dimension"), [
    ("10mbps", "rate"), ("10MBPS", "rate"), ("10kbps", "rate"), ("10gbps", "rate"), ("10mb/s", "rate"),
    ("512mb", "size"), ("512Mb", "size"), ("1kb", "size"), ("10b", "size"), ("1gb", "size"),
])
def test_ambiguous_spellings_are_refused_in_one_line(text, dimension):
    with pytest.raises(QuantityError) as info:
        parse_quantity(text, dimension)
    message = str(info.value)
    assert "ambiguous" in message and "\n" not in message
    assert ("MB/s" in message and "Mbit/s" in message) if dimension == "rate" else "MiB" in message


def test_other_capitalisations_are_read_when_they_mean_one_thing():
    assert parse_rate_mbps("20mbit") == parse_rate_mbps("20MBIT") == parse_rate_mbps("20Mbit/s") == 20.0
    assert parse_quantity("30MS", "duration") == 30.0
    assert parse_size_bytes("2mib") == 2 * 2**20


def test_a_unit_of_another_kind_is_named():
    with pytest.raises(QuantityError, match=r"unit 'ms' is wrong for a rate \(it is a duration\)"):
        parse_rate_mbps("20ms")


# ------------------------------------------------------------------------------ sweep files (finding: MBps)


def _sweep(tmp_path, axes, **extra):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "u", "base": {"simulation": str(BASE_SIM)}, "axes": axes, **extra}))
    return path


def _values(spec, name):
    return next(a for a in spec.axes if a.name == name).values


def test_sweep_unit_mbps_with_capital_b_is_bytes_not_megabits(tmp_path):
    spec = load_sweep(_sweep(tmp_path, {"bandwidth": {"values": [1, 2], "unit": "MBps"}}))
    assert _values(spec, "bandwidth") == (8.0, 16.0)  # was (1.0, 2.0): an 8x error
    spec = load_sweep(_sweep(tmp_path, {"bandwidth": ["1MB/s", "1MiB/s", "1Mbit/s"]}))
    assert _values(spec, "bandwidth") == (8.0, 8 * 2**20 / 1e6, 1.0)
    with pytest.raises(SweepError, match=r"axes.bandwidth\[0\]: unit 'mbps' is ambiguous"):
        load_sweep(_sweep(tmp_path, {"bandwidth": {"values": [1], "unit": "mbps"}}))


def test_sweep_loss_column_holds_percent_and_the_topology_gets_the_same(tmp_path):
    from testbed.sweep.points import simulation_document

    spec = load_sweep(_sweep(tmp_path, {"loss": ["1%", "2.5%", 0]}))
    axis = spec.axes[0]
    assert axis.column == "loss_pct" and axis.values == (1.0, 2.5, 0.0)  # was 0.01, 0.025 under loss_pct
    doc = simulation_document(BASE_SIM, {"loss": 2.5}, {}, 1, tmp_path / "work")
    topology = load_topology(doc["topology"])
    device_links = [lk for lk in topology.links if "device" in (lk.a, lk.b)]
    assert device_links and all(lk.loss_pct == 2.5 for lk in device_links)
    with pytest.raises(SweepError, match="has no unit"):
        load_sweep(_sweep(tmp_path, {"loss": [1]}))


def test_background_load_bare_numbers_are_fractions_and_the_error_says_so(tmp_path):
    with pytest.raises(SweepError) as info:
        load_sweep(_sweep(tmp_path, {"background_load": [60, 80]}))
    message = str(info.value)
    assert "a bare number is a fraction (0-1)" in message and "'60%'" in message and "\n" not in message
    spec = load_sweep(_sweep(tmp_path, {"background_load": ["60%", 0.8]}))
    assert spec.axes[0].column == "background_load_fraction" and spec.axes[0].values == (0.6, 0.8)


def test_sweep_and_topology_sizes_share_one_meaning(tmp_path):
    spec = load_sweep(_sweep(tmp_path, {"input_size": ["512MB", "512MiB"]}))
    assert _values(spec, "input_size") == (512e6, 512 * 2**20)
    assert _values(load_sweep(_sweep(tmp_path, {"input_size": ["512m"]})), "input_size") == (512 * 2**20,)
    memory = [n.memory_bytes for n in _topology(tmp_path, memory=["512MB", "512MiB", "512m"]).nodes]
    assert memory == [512 * 10**6, 512 * 2**20, 512 * 2**20]  # '512MB' was 512 MiB in topology files
    with pytest.raises(SweepError, match="ambiguous"):
        load_sweep(_sweep(tmp_path, {"input_size": ["512mb"]}))
    with pytest.raises(TopologyError, match=r"nodes\[0\].memory: unit 'mb' is ambiguous"):
        _topology(tmp_path, memory=["512mb"])


# ----------------------------------------------------------------------- topology and simulation files


def _topology(tmp_path, memory=("1g",), links=None):
    nodes = [{"name": f"n{i}", "tier": "device", "cpus": 0.5, "memory": m} for i, m in enumerate(memory)]
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump({"name": "u", "nodes": nodes, "links": links or []}))
    return load_topology(path)


def _two_node_doc(link):
    return {"name": "u", "nodes": [{"name": "device", "tier": "device", "cpus": 0.5, "memory": "256m"},
                                   {"name": "edge", "tier": "edge", "cpus": 1, "memory_bytes": 2**28}],
            "links": [{"a": "device", "b": "edge", **link}]}


def test_bare_numbers_only_where_the_name_carries_the_unit_in_topology_files():
    named = topology_from_dict(_two_node_doc({"bandwidth_mbps": 20, "rtt_ms": 10, "jitter_ms": 1, "loss_pct": 1}))
    spelled = topology_from_dict(_two_node_doc({"bandwidth": "20Mbit/s", "rtt": "10ms", "jitter": "1ms",
                                                "loss": "1%"}))
    assert named == spelled
    assert named.nodes[1].memory_bytes == 2**28
    assert topology_from_dict(_two_node_doc({"bandwidth_mbps": "2.5MB/s", "rtt": "10ms"})).links[0].bandwidth_mbps == 20
    with pytest.raises(TopologyError, match=r"links\[0\].bandwidth: '20' has no unit"):
        topology_from_dict(_two_node_doc({"bandwidth": 20, "rtt": "10ms"}))
    with pytest.raises(TopologyError, match="give bandwidth or bandwidth_mbps, not both"):
        topology_from_dict(_two_node_doc({"bandwidth": "20mbit", "bandwidth_mbps": 20, "rtt": "10ms"}))


def _sim_doc(**changes):
    doc = yaml.safe_load(BASE_SIM.read_text())
    doc.update(changes)
    return doc


def test_simulation_conditions_follow_the_same_rule():
    base = {"kind": "step", "link": "device>edge"}
    bare = simulation_from_dict(_sim_doc(conditions=[{**base, "bandwidth_mbps": [[0, 20], [5, 2]]}]), BASE_SIM.parent)
    spelled = simulation_from_dict(_sim_doc(conditions=[{**base, "bandwidth_mbps": [[0, "20Mbit/s"], [5, "250kB/s"]]}]),
                                   BASE_SIM.parent)
    assert bare.conditions[0].points == spelled.conditions[0].points == ((0.0, 20.0), (5.0, 2.0))
    walk = simulation_from_dict(_sim_doc(conditions=[{"kind": "random-walk", "link": "device>edge", "start": "1MB/s",
                                                      "min": 0.5, "max": "10Mbit/s"}]), BASE_SIM.parent)
    assert (walk.conditions[0].start, walk.conditions[0].min, walk.conditions[0].max) == (8.0, 0.5, 10.0)
    timed = simulation_from_dict(_sim_doc(input_bytes="0.15MB", warmup_s="500ms"), BASE_SIM.parent)
    assert (timed.input_bytes, timed.warmup_s) == (150_000.0, 0.5)
    with pytest.raises(SimulationFileError, match="ambiguous"):
        simulation_from_dict(_sim_doc(conditions=[{**base, "bandwidth_mbps": [[0, "20mbps"]]}]), BASE_SIM.parent)


def test_simulation_load_as_bare_percent_says_it_is_a_fraction(tmp_path):
    spec = simulation_from_dict(_sim_doc(conditions=[{"kind": "step", "node": "edge", "load": [[0, 60]]}]),
                                BASE_SIM.parent)
    with pytest.raises(TraceError, match=r"a bare number is a fraction of the node \(0-1\); for percent write '60%'"):
        build_trace(spec.conditions[0])
    spec = simulation_from_dict(_sim_doc(conditions=[{"kind": "step", "node": "edge", "load": [[0, "60%"]]}]),
                                BASE_SIM.parent)
    assert build_trace(spec.conditions[0]).points == ((0.0, 0.6),)


def test_rtt_ms_is_a_round_trip_in_the_simulator_and_in_predict():
    """The simulator's problem used to hold the one-way delay under the name rtt_ms."""
    from testbed.run.predict import network_from_probes
    from testbed.sim.world import load_world

    world = load_world(load_simulation(REPO / "experiments" / "sim-wired-dip.yaml"))
    network = world.problem("device", {}, {}).network
    direct = network.link("device", "edge")
    assert direct.rtt_ms == world.topology.link("device", "edge").rtt_ms == 20.0  # a round trip
    assert direct.rtt_share == 0.5 and direct.delay_ms == 10.0  # the simulator charges the one-way half

    class Probe:
        a, b, measured_rtt_ms, measured_mbps = "device", "edge", 20.0, 20.0

    measured = network_from_probes([Probe()]).link("device", "edge")
    assert measured.rtt_ms == 20.0 and measured.delay_ms == 20.0  # predict (the original tool) charges it whole


# ------------------------------------------------------------------------------------------------- CLIs


def _cli(module, *args):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120)


def test_predict_flags_use_the_grammar(legacy_dir):
    def first_line(*flags):
        out = _cli("scission.cli", "predict", str(legacy_dir), "network_stats.csv", "vgg19", *flags)
        return out

    plain, mebi = first_line("-i", "0.15"), first_line("-i", "0.15MiB")
    assert plain.returncode == mebi.returncode == 0, plain.stderr + mebi.stderr
    assert first_line("-i", "150kB").stdout == plain.stdout
    assert mebi.stdout != plain.stdout  # 0.15 MiB is 157,286 bytes, not 150,000
    bad = first_line("-i", "0.15mb")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "ambiguous" in bad.stderr
    timed = first_line("--device-time", "500ms")
    assert timed.returncode == 0 and timed.stdout == first_line("--device-time", "0.5").stdout


def test_emulator_runtime_flags_use_the_grammar():
    out = _cli("emulator.cli", "link", "set", "device", "edge", "-t", "emutest-units", "--bandwidth", "1mbps")
    assert out.returncode == 2 and "--bandwidth: unit 'mbps' is ambiguous" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    out = _cli("emulator.cli", "probe", "emutest-units", "--duration-s", "2parsecs")
    assert out.returncode == 2 and "--duration-s: unknown unit 'parsecs'" in out.stderr


def test_fraction_parser_hint():
    assert parse_fraction("60%") == 0.6 and parse_fraction(0.6) == 0.6
    with pytest.raises(QuantityError, match=r"a bare number is a fraction \(0-1\); for percent write '60%'"):
        parse_fraction(60)


def test_testbed_commands_refuse_bad_quantities_in_one_line(tmp_path):
    sim = tmp_path / "sim.yaml"
    sim.write_text(yaml.safe_dump(_sim_doc(topology=str(BASE_SIM.parent / "../topologies/three-tier-wifi.yaml"),
                                           profiles=str(BASE_SIM.parent / "../tests/data/legacy"),
                                           conditions=[{"kind": "step", "node": "edge", "load": [[0, 60]]}])))
    out = _cli("testbed.cli", "simulate", str(sim), "--out", str(tmp_path / "out"))
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "a bare number is a fraction of the node (0-1); for percent write '60%'" in out.stderr
    sweep = _sweep(tmp_path, {"bandwidth": {"values": [1, 2], "unit": "mbps"}})
    out = _cli("testbed.cli", "sweep", str(sweep), "--out", str(tmp_path / "sweep-out"))
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "unit 'mbps' is ambiguous" in out.stderr and "MB/s" in out.stderr
