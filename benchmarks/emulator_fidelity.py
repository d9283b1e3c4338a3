"""Emulator fidelity: configured vs measured throughput, RTT and CPU share, plus runtime-action latency.

Targets (issue 4): throughput within +-10% at 1, 10 and 50 Mbit/s; RTT within +-(1 ms + 10%) at 20 and
100 ms; a CPU-bound loop under cpus=0.5 takes 2.0x +-15% of its time under cpus=1.0; every runtime
action takes effect within 1 s.

Writes benchmarks/results/emulator_fidelity.json and .md. Needs root and a Docker Engine
(scripts/ensure_docker.sh). Run:  python benchmarks/emulator_fidelity.py [--duration-s 4]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from rich.progress import Progress

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emulator import Emulation, lifecycle  # noqa: E402
from emulator.capabilities import detect  # noqa: E402
from emulator.docker_backend import engine_info  # noqa: E402
from emulator.image import build_node_image  # noqa: E402
from emulator.topology import topology_from_dict  # noqa: E402
from scission.files import atomic_write_text  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
NAME = "bench-fidelity"
THROUGHPUT_MBPS = (1.0, 10.0, 50.0)
THROUGHPUT_RTT_MS = 20.0
RTT_MS = (20.0, 100.0)
RTT_BANDWIDTH_MBPS = 10.0
# Prints wall seconds and the process's own CPU seconds: their ratio is the CPU share it actually got.
CPU_LOOP = (
    "import time\nt=time.perf_counter(); c=time.process_time()\nx=0\nfor i in range(25_000_000):\n    x+=i\n"
    "print(time.perf_counter()-t, time.process_time()-c)"
)


def _spec():
    return topology_from_dict(
        {
            "name": NAME,
            "nodes": [
                {"name": "a", "tier": "edge", "cpus": 1.0, "memory": "512m"},
                {"name": "b", "tier": "cloud", "cpus": 1.0, "memory": "512m"},
                {"name": "cpu", "tier": "device", "cpus": 1.0, "memory": "256m"},
            ],
            "links": [{"a": "a", "b": "b", "bandwidth": "10mbit", "rtt": "20ms"}],
        }
    )


def _probe_link(emu: Emulation, duration_s: float, count: int) -> list:
    return [r for r in emu.probe(duration_s=duration_s, count=count) if {r.a, r.b} == {"a", "b"}]


def _cpu_loop(emu: Emulation) -> tuple[float, float]:
    """(wall s, cpu s) of one run of the loop inside the node."""
    rc, out = emu.exec("cpu", ["python3", "-c", CPU_LOOP])
    if rc != 0:
        raise RuntimeError(out)
    wall_s, cpu_s = map(float, out.strip().splitlines()[-1].split())
    return wall_s, cpu_s


def _cpu_pairs(emu: Emulation, repeats: int) -> dict:
    """Interleave cpus=1.0 and cpus=0.5 runs so drifting load from other work on the host hits both alike."""
    full, half = [], []
    for _ in range(repeats):
        emu.set_cpus("cpu", 1.0)
        full.append(_cpu_loop(emu))
        emu.set_cpus("cpu", 0.5)
        half.append(_cpu_loop(emu))
    ratios = [h[0] / f[0] for f, h in zip(full, half, strict=True)]
    ratio = statistics.median(ratios)
    return {
        "loop_s_cpus_1.0": [f[0] for f in full],
        "loop_s_cpus_0.5": [h[0] for h in half],
        "cpu_share_cpus_1.0": statistics.median(f[1] / f[0] for f in full),
        "cpu_share_cpus_0.5": statistics.median(h[1] / h[0] for h in half),
        "pair_ratios": ratios,
        # Diagnostic, not the target: wall time at 0.5 over the loop's CPU time at 1.0 (= its time on a
        # dedicated core). It isolates the quota's precision from contention by other work on the host.
        "ratio_vs_dedicated_core": statistics.median(h[0] / f[1] for f, h in zip(full, half, strict=True)),
        "ratio": ratio,
        "within_target": abs(ratio - 2.0) <= 0.3,
    }


def _timed(fn) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=4.0, help="bulk transfer per direction")
    parser.add_argument("--count", type=int, default=20, help="echo round trips per direction")
    parser.add_argument("--cpu-repeats", type=int, default=5)
    parser.add_argument("--mechanism", default="auto", choices=["auto", "netem", "delayline"])
    args = parser.parse_args()

    image = build_node_image()
    lifecycle.down(NAME)
    caps = detect()
    rows_tput, rows_rtt, rows_action = [], [], []
    cpu: dict = {}
    with Emulation.up(_spec(), image=image, mechanism=args.mechanism) as emu, Progress() as progress:
        mechanism = emu.state.mechanism
        task = progress.add_task("fidelity", total=len(THROUGHPUT_MBPS) + len(RTT_MS) + 2)
        for mbps in THROUGHPUT_MBPS:
            emu.set_link("a", "b", bandwidth_mbps=mbps, rtt_ms=THROUGHPUT_RTT_MS)
            for r in _probe_link(emu, args.duration_s, 5):
                err = (r.measured_mbps / mbps - 1) * 100 if r.measured_mbps else None
                rows_tput.append({"direction": f"{r.a}->{r.b}", "configured_mbps": mbps,
                                  "configured_rtt_ms": THROUGHPUT_RTT_MS, "measured_mbps": r.measured_mbps,
                                  "error_pct": err, "within_target": err is not None and abs(err) <= 10})  # fmt: skip
            progress.advance(task)
        for rtt in RTT_MS:
            emu.set_link("a", "b", bandwidth_mbps=RTT_BANDWIDTH_MBPS, rtt_ms=rtt)
            for r in _probe_link(emu, 0, args.count):
                tol = 1 + 0.1 * rtt
                err = r.measured_rtt_ms - rtt if r.measured_rtt_ms is not None else None
                rows_rtt.append({"direction": f"{r.a}->{r.b}", "configured_rtt_ms": rtt,
                                 "measured_rtt_ms": r.measured_rtt_ms, "error_ms": err, "tolerance_ms": tol,
                                 "within_target": err is not None and abs(err) <= tol})  # fmt: skip
            progress.advance(task)
        load_before = os.getloadavg()[0]
        cpu = _cpu_pairs(emu, args.cpu_repeats)
        cpu["host_loadavg_1min_before"] = load_before
        progress.advance(task)
        actions = [
            ("set link bandwidth", lambda: emu.set_link("a", "b", bandwidth_mbps=20)),
            ("set link rtt", lambda: emu.set_link("a", "b", rtt_ms=40)),
            ("set link loss", lambda: emu.set_link("a", "b", loss_pct=1)),
            ("cut link", lambda: emu.cut_link("a", "b")),
            ("restore link", lambda: emu.restore_link("a", "b")),
            ("set node cpus", lambda: emu.set_cpus("cpu", 0.25)),
            ("start cpu load", lambda: emu.start_load("cpu")),
            ("stop cpu load", lambda: emu.stop_load("cpu")),
            ("stop node", lambda: emu.stop_node("b")),
            ("start node", lambda: emu.start_node("b")),
        ]
        for label, fn in actions:
            took = _timed(fn)
            rows_action.append({"action": label, "duration_s": took, "within_target": took <= 1.0})
        progress.advance(task)

    info = engine_info()
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": {
            "kernel": platform.release(),
            "cpus": caps.host_cpus,
            "cgroup_version": info["cgroup_version"],
            "docker": info["server_version"],
            "qdiscs": caps.qdiscs,
        },  # fmt: skip
        "mechanism": mechanism,
        "settings": {"duration_s": args.duration_s, "count": args.count, "cpu_repeats": args.cpu_repeats},
        "throughput": rows_tput,
        "rtt": rows_rtt,
        "cpu": cpu,
        "actions": rows_action,
        "all_within_target": all(r["within_target"] for r in rows_tput + rows_rtt + rows_action)
        and cpu["within_target"],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / "emulator_fidelity.json", json.dumps(result, indent=1))
    atomic_write_text(RESULTS / "emulator_fidelity.md", _markdown(result))
    print(_markdown(result))
    return 0


def _ok(flag: bool) -> str:
    return "yes" if flag else "**NO**"


def _markdown(r: dict) -> str:
    lines = [
        "# Emulator fidelity",
        "",
        f"{r['date']}, mechanism **{r['mechanism']}**, kernel {r['host']['kernel']}, {r['host']['cpus']} cpus, "
        f"cgroup v{r['host']['cgroup_version']}, Docker {r['host']['docker']}. "
        f"Bulk transfer {r['settings']['duration_s']:g} s per direction (slow start excluded), "
        f"{r['settings']['count']} echoes per direction. Produced by `python benchmarks/emulator_fidelity.py`.",
        "",
        "## Throughput (target ±10%; measured is TCP goodput, ~4.4% under the wire rate from headers)",
        "",
        "| direction | configured Mbit/s | measured Mbit/s | error % | within target |",
        "|---|---|---|---|---|",
    ]
    for row in r["throughput"]:
        m = row["measured_mbps"]
        lines.append(f"| {row['direction']} | {row['configured_mbps']:g} | {m:.2f} | {row['error_pct']:+.1f} | "
                     f"{_ok(row['within_target'])} |" if m else f"| {row['direction']} | {row['configured_mbps']:g} | - | - | **NO** |")  # fmt: skip
    lines += ["", "## RTT (target ±(1 ms + 10%))", "",
              "| direction | configured ms | measured ms (median) | error ms | tolerance ms | within target |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for row in r["rtt"]:
        lines.append(f"| {row['direction']} | {row['configured_rtt_ms']:g} | {row['measured_rtt_ms']:.2f} | "
                     f"{row['error_ms']:+.2f} | {row['tolerance_ms']:.1f} | {_ok(row['within_target'])} |")  # fmt: skip
    c = r["cpu"]
    lines += ["", "## CPU limit (target: cpus=0.5 takes 2.0× ±15% of cpus=1.0)", "",
              "Runs interleaved in pairs; ratio is the median of the pair ratios. CPU share = the loop's own CPU "
              f"seconds / wall seconds. Host 1-min load average before: {c['host_loadavg_1min_before']:.2f} "
              "(other work on this 2-core host competes with the cpus=1.0 runs).", "",
              "| cpus=1.0 loop s | cpus=0.5 loop s | pair ratios | CPU share at 1.0 / 0.5 | 0.5 vs dedicated core | ratio | within target |",
              "|---|---|---|---|---|---|---|",
              f"| {', '.join(f'{x:.2f}' for x in c['loop_s_cpus_1.0'])} | {', '.join(f'{x:.2f}' for x in c['loop_s_cpus_0.5'])} "
              f"| {', '.join(f'{x:.2f}' for x in c['pair_ratios'])} "
              f"| {c['cpu_share_cpus_1.0']:.2f} / {c['cpu_share_cpus_0.5']:.2f} | {c['ratio_vs_dedicated_core']:.2f} | {c['ratio']:.2f} | {_ok(c['within_target'])} |",
              "", "## Runtime actions (target ≤ 1 s each)", "", "| action | took s | within target |", "|---|---|---|"]  # fmt: skip
    for row in r["actions"]:
        lines.append(f"| {row['action']} | {row['duration_s']:.3f} | {_ok(row['within_target'])} |")
    lines += ["", f"All within target: {_ok(r['all_within_target'])}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
