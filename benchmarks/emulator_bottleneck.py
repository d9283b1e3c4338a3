"""Where the link drops: UDP offered at 1.2x the link rate, TCP goodput and RTT offset, per link rate.

Issue 12: shaping at the sender's own egress pushed excess UDP back at the sender's socket (no loss at
1.2x a 25 Mbit/s link) where a real bottleneck drops it. This measures, per rate, the share of a 1.2x UDP
train that is lost (a bottleneck drops 1 - 1/1.2 = 16.7%) and what the sender managed to offer, then
`emulator probe` figures (TCP goodput as % of the rate, the UDP-train rate, RTT offset, loss).

Writes benchmarks/results/emulator_bottleneck_<label>.json. Needs root and a Docker Engine. Run:
    python benchmarks/emulator_bottleneck.py --label after [--duration-s 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emulator import Emulation, lifecycle  # noqa: E402
from emulator.image import build_node_image  # noqa: E402
from emulator.probe import AGENT_SOURCE, _start_agents, _stop_agents  # noqa: E402
from emulator.topology import topology_from_dict  # noqa: E402
from scission.files import atomic_write_text  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
NAME = "emu-bench-bottleneck"
RATES_MBPS = (2.0, 4.0, 25.0)
RTT_MS = 20.0
EXCESS = 1.2


def excess_udp(emu: Emulation, src: str, dst: str, mbps: float, duration_s: float) -> dict:
    opts = {"host": emu.address(dst, src), "mbps": mbps, "frame_bytes": 1514, "duration_s": duration_s,
            "timeout_s": 0.5}  # fmt: skip
    rc, out = emu.exec(src, ["python3", "-c", AGENT_SOURCE, "train", json.dumps(opts)])
    if rc != 0:
        raise RuntimeError(out)
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="before / after: names the output file")
    parser.add_argument("--duration-s", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rtt-ms", type=float, default=RTT_MS)
    parser.add_argument("--rates-mbps", type=float, nargs="+", default=list(RATES_MBPS))
    parser.add_argument("--suffix", default="", help="appended to the output file name")
    args = parser.parse_args()
    rtt_ms = args.rtt_ms
    spec = topology_from_dict({
        "name": NAME,
        "nodes": [{"name": "a", "tier": "device", "cpus": 1.0, "memory": "256m"},
                  {"name": "b", "tier": "edge", "cpus": 1.0, "memory": "256m"}],
        "links": [{"a": "a", "b": "b", "bandwidth": "2mbit", "rtt": f"{rtt_ms:g}ms"}],
    })  # fmt: skip
    lifecycle.down(NAME)
    rows = []
    with Emulation.up(spec, image=build_node_image()) as emu:
        mechanism = emu.state.mechanism
        for mbps, loss_pct in [(r, 0.0) for r in args.rates_mbps] + [(2.0, 1.0)] * (not args.suffix):
            emu.set_link("a", "b", bandwidth_mbps=mbps, loss_pct=loss_pct)
            _start_agents(NAME, ["a", "b"])
            try:
                udp = [excess_udp(emu, "a", "b", mbps * EXCESS, args.duration_s) for _ in range(args.repeats)]
            finally:
                _stop_agents(NAME, ["a", "b"])
            probes = [r for _ in range(args.repeats) for r in emu.probe(duration_s=args.duration_s, count=10)]
            goodput = [r.tcp_goodput_mbps for r in probes if r.tcp_goodput_mbps]
            rows.append({
                "configured_mbps": mbps, "configured_rtt_ms": rtt_ms, "configured_loss_pct": loss_pct,
                "udp_excess_offered_mbps": statistics.median(u["offered_mbps"] for u in udp),
                "udp_excess_loss_pct": statistics.median(u["loss_pct"] for u in udp),
                "udp_excess_send_errors": sum(u["send_errors"] for u in udp),
                "tcp_goodput_pct": 100 * statistics.median(goodput) / mbps if goodput else None,
                "measured_rate_mbps": statistics.median(r.measured_rate_mbps for r in probes if r.measured_rate_mbps),
                "measured_loss_pct": statistics.median(r.measured_loss_pct for r in probes if r.measured_loss_pct is not None),
                "rtt_offset_ms": statistics.median(r.measured_rtt_ms - rtt_ms for r in probes if r.measured_rtt_ms),
            })  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    result = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "label": args.label,
              "host_loadavg_1min_after": os.getloadavg()[0],
              "mechanism": mechanism, "duration_s": args.duration_s, "repeats": args.repeats, "rows": rows}  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / f"emulator_bottleneck_{args.label}_rtt{rtt_ms:g}ms{args.suffix}.json", json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
