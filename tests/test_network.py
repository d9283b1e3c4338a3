from __future__ import annotations

import pytest

from scission.errors import MissingNetworkPair, NetworkTableError
from scission.network import load_network_csv


def test_reads_space_padded_legacy_csv(legacy_dir):
    table = load_network_csv(legacy_dir / "network_stats.csv")
    link = table.link("raspi4", "vm2Core")
    assert (link.rtt_ms, link.bandwidth_mbps) == (66.7, 1.6)
    assert link.transfer_s(200_000) == pytest.approx(0.0667 + 1.0)
    assert len(table) == 8
    with pytest.raises(MissingNetworkPair, match="vm2Core -> raspi4"):
        table.link("vm2Core", "raspi4")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("a,b,1\n", "line 2: expected 4 fields"),
        ("a,b,fast,1\n", "line 2: ping 'fast'"),
        ("a,b,1,2\na,c,1,-3\n", "line 3: bandwidth -3.0"),
        ("a,b,-1,2\n", "line 2: rtt -1.0"),
        (",b,1,2\n", "line 2: empty source"),
    ],
)
def test_malformed_rows_name_the_line(tmp_path, body, message):
    path = tmp_path / "net.csv"
    path.write_text("source,destination,ping(ms),bandwidth(mbps)\n" + body)
    with pytest.raises(NetworkTableError, match=message):
        load_network_csv(path)


def test_missing_file_and_bad_header(tmp_path):
    with pytest.raises(NetworkTableError, match="does not exist"):
        load_network_csv(tmp_path / "nope.csv")
    path = tmp_path / "net.csv"
    path.write_text("from,to\n")
    with pytest.raises(NetworkTableError, match="line 1: expected header"):
        load_network_csv(path)


def test_routes_take_the_fewest_hops_and_break_ties_by_link_order():
    from scission.network import Routes

    chain = Routes([("device", "gateway"), ("gateway", "edge"), ("edge", "cloud")])
    assert chain.path("device", "cloud") == ("device", "gateway", "edge", "cloud")
    assert chain.path("cloud", "device") == ("cloud", "edge", "gateway", "device")
    assert chain.paths_from("edge") == {"edge": ("edge",), "gateway": ("edge", "gateway"), "cloud": ("edge", "cloud"),
                                        "device": ("edge", "gateway", "device")}
    square = [("d", "a"), ("d", "b"), ("a", "c"), ("b", "c")]
    assert Routes(square).path("d", "c") == ("d", "a", "c")
    assert Routes([square[1], square[0], *square[2:]]).path("d", "c") == ("d", "b", "c")
    assert Routes([("a", "b"), ("c", "d")]).path("a", "d") is None
    assert Routes([]).paths_from("alone") == {"alone": ("alone",)}
