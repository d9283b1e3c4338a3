"""Command line for the emulator: a thin layer over lifecycle, actions, probe and doctor.

Bad input and every EmulatorError end as one line on stderr and exit status 2; Ctrl-C exits 130
after `up` has removed whatever it had started.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
from dataclasses import asdict

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from emulator.errors import EmulatorError, TopologyError
from emulator.topology import (
    check_fits_host,
    load_topology,
    parse_bandwidth_mbps,
    parse_duration_ms,
    parse_loss_pct,
)
from scission.quantities import parse_duration_s
from scission.resources import arg_type as shipped

console = Console()
if not console.is_terminal:  # piped or logged: do not wrap tables at 80 columns
    console = Console(width=200)
err = Console(stderr=True, width=1000)  # one error line stays one line


def _unit_arg(parser_fn, flag: str):
    def parse(text: str) -> float:
        try:
            return parser_fn(text)
        except ValueError as exc:
            raise TopologyError(f"{flag}: {exc}") from None

    return parse


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emulator", description="Device/edge/cloud tiers as Docker containers."
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="-v lifecycle, -vv every command")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("up", help="start a topology")
    p.add_argument("topology", type=shipped("topologies"), help="topology YAML file, or a shipped one by name "
                   "(four-tier; python -m scission.resources lists them)")
    p.add_argument("--mechanism", default="auto", choices=["auto", "netem", "delayline"])
    p.add_argument("--image", help="node image tag (default: build/reuse the content-hashed image)")
    p.add_argument("--dry-run", action="store_true", help="print the link commands and start nothing")

    p = sub.add_parser("down", help="stop a topology (all when no name); idempotent, cleans leftovers")
    p.add_argument("name", nargs="?")

    p = sub.add_parser("status", help="show running topologies")
    p.add_argument("name", nargs="?")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("probe", help="measure every link direction from inside the containers")
    p.add_argument("name", nargs="?")
    p.add_argument("--json", action="store_true")
    p.add_argument("--duration-s", type=_unit_arg(lambda v: parse_duration_s(v, bare="s"), "--duration-s"),
                   default=2.0, help="bulk transfer per direction (s, or e.g. 500ms)")
    p.add_argument("--count", type=int, default=10, help="echo round trips per direction")

    p = sub.add_parser("doctor", help="host capabilities: engine, cgroup version, qdiscs")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("validate", help="check a topology file without starting anything")
    p.add_argument("topology", type=shipped("topologies"), help="topology YAML file or a shipped name")

    p = sub.add_parser("image", help="build the node image (Python, TensorFlow CPU, this project)")
    p.add_argument("action", choices=["build", "tag"])
    p.add_argument("--force", action="store_true")
    p.add_argument(
        "--base",
        default=None,
        help="base image: the offline debootstrap one (default) or a standard one such as debian:bookworm-slim",
    )

    link = sub.add_parser("link", help="change a link of a running topology").add_subparsers(
        dest="action", required=True
    )
    p = link.add_parser("set", help="set bandwidth, rtt, jitter or loss")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--bandwidth", type=_unit_arg(parse_bandwidth_mbps, "--bandwidth"), help="e.g. 5mbit")
    p.add_argument("--rtt", type=_unit_arg(parse_duration_ms, "--rtt"), help="e.g. 30ms")
    p.add_argument("--jitter", type=_unit_arg(parse_duration_ms, "--jitter"), help="e.g. 2ms")
    p.add_argument("--loss", type=_unit_arg(parse_loss_pct, "--loss"), help="e.g. 1%%")
    for action in ("cut", "restore"):
        p = link.add_parser(action, help=f"{action} a link")
        p.add_argument("a")
        p.add_argument("b")
    for p in link.choices.values():
        p.add_argument("-t", "--topology", help="topology name (default: the only running one)")

    node = sub.add_parser("node", help="change a node of a running topology").add_subparsers(
        dest="action", required=True
    )
    p = node.add_parser("cpus", help="set the CPU limit (cores)")
    p.add_argument("node")
    p.add_argument("cpus", type=float)
    p = node.add_parser("load", help="start or stop background CPU load")
    p.add_argument("node")
    p.add_argument("switch", choices=["start", "stop"])
    p.add_argument("--workers", type=int, help="busy processes (default: ceil(cpus))")
    for action in ("stop", "start"):
        p = node.add_parser(action, help=f"{action} a node")
        p.add_argument("node")
    for p in node.choices.values():
        p.add_argument("-t", "--topology", help="topology name (default: the only running one)")
    return parser


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _cmd_up(args) -> int:
    from emulator import lifecycle

    spec = load_topology(args.topology)
    check_fits_host(spec)
    if args.dry_run:
        for argv in lifecycle.dry_run_commands(spec, args.mechanism):
            console.print(" ".join(argv), highlight=False, soft_wrap=True)
        return 0
    with console.status(f"starting {spec.name}") as status:
        state = lifecycle.up(
            spec,
            mechanism=args.mechanism,
            image=args.image,
            on_progress=lambda m: status.update(f"{spec.name}: {m}"),
        )
    console.print(f"{spec.name} is up: {len(spec.nodes)} nodes, {len(spec.links)} links ({state.mechanism})")
    return 0


def _cmd_down(args) -> int:
    from emulator import lifecycle

    names = lifecycle.down(args.name)
    console.print(f"down: {', '.join(names)}" if names else "nothing was running")
    return 0


def _cmd_status(args) -> int:
    from emulator import lifecycle

    statuses = lifecycle.status(args.name)
    # `status NAME` of a broken topology exits 1 so scripts can tell "usable" from "needs `down`"
    code = 1 if args.name and any(st.condition == "broken" for st in statuses) else 0
    if args.json:
        print(json.dumps([asdict(s) for s in statuses], indent=1))
        return code
    if not statuses:
        console.print("no topology is running")
    for st in statuses:
        if st.condition != "running":
            console.print(f"[bold]{st.name}[/bold]  {_unfinished_line(st)}", highlight=False, soft_wrap=True)
            continue
        console.print(f"[bold]{st.name}[/bold]  image {st.image}  since {st.created_at}")
        nodes = Table("node", "tier", "container", "cpus", "memory MiB", "load workers")
        for n in st.nodes:
            nodes.add_row(
                n.name,
                n.tier,
                n.container_status,
                f"{n.cpus:g}",
                str(n.memory_bytes // 2**20),
                str(n.load_workers),
            )
        console.print(nodes)
        links = Table("link", "Mbit/s", "rtt ms", "jitter ms", "loss %", "mechanism", "state")
        for lk in st.links:
            state = (
                "cut" if lk.is_cut else ("ok" if lk.is_delayline_alive in (True, None) else "delay line dead")
            )
            links.add_row(f"{lk.a}-{lk.b}", f"{lk.bandwidth_mbps:g}", f"{lk.rtt_ms:g}", f"{lk.jitter_ms:g}",
                          f"{lk.loss_pct:g}", lk.mechanism, state)  # fmt: skip
        console.print(links)
    return code


def _unfinished_line(st) -> str:
    left = st.leftovers
    parts = [f"{len(left.containers)} container(s)", f"{len(left.netns)} namespace(s)",
             f"{len(left.delayline_pids)} delay line(s)"] + ([left.state_dir] if left.state_dir else [])  # fmt: skip
    if st.condition == "starting":
        return f"starting (`emulator up` in progress): {', '.join(parts)} so far"
    return (f"[red]BROKEN[/red]: {escape(st.problem)}; left behind: {escape(', '.join(parts))}; "
            f"remove with `{st.remedy}`")  # fmt: skip


def _cmd_probe(args) -> int:
    from emulator.lifecycle import require_single_running
    from emulator.probe import probe

    name = require_single_running(args.name)
    with console.status(f"probing {name}") as status:
        results = probe(
            name,
            duration_s=args.duration_s,
            count=args.count,
            on_progress=lambda m: status.update(f"probing {m}"),
        )
    if args.json:
        print(json.dumps([r.to_json() for r in results], indent=1))
        return 0
    table = Table("a -> b", "configured Mbit/s", "rate Mbit/s", "TCP goodput Mbit/s", "configured loss %",
                  "measured loss %", "configured rtt ms", "measured rtt ms", "Δ ms", "mechanism",
                  title=f"{name}: configured vs measured")  # fmt: skip
    for r in results:
        d_rtt = r.measured_rtt_ms - r.configured_rtt_ms if r.measured_rtt_ms is not None else None
        table.add_row(f"{r.a} -> {r.b}", f"{r.configured_mbps:g}", _fmt(r.measured_rate_mbps), _fmt(r.tcp_goodput_mbps),
                      f"{r.configured_loss_pct:g}", _fmt(r.measured_loss_pct), f"{r.configured_rtt_ms:g}",
                      _fmt(r.measured_rtt_ms), _fmt(d_rtt), r.mechanism + (f" ({r.error})" if r.error else ""))  # fmt: skip
    console.print(table)
    console.print("rate: what the link carries (UDP train above the rate, frame bytes as tc counts them); TCP goodput: "
                  "one Reno flow's payload, ~4% under the rate from headers and lower with loss; loss: a paced train "
                  "of small datagrams.", style="dim", soft_wrap=True)  # fmt: skip
    return 0


def _cmd_doctor(args) -> int:
    from emulator.doctor import diagnose

    report = diagnose()
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    engine = report["engine"]
    if "error" in engine:
        console.print(f"engine: [red]{engine['error']}[/red]")
    else:
        console.print(f"engine: Docker {engine['server_version']} (API {engine['api_version']}), "
                      f"storage {engine['storage_driver']}, cgroup driver {engine['cgroup_driver']}")  # fmt: skip
        image = report["node_image"]
        console.print(f"node image: {image['tag']} ({'built' if image['is_built'] else 'not built yet'})")
    console.print(f"cgroup version: v{report['cgroup_version']}   host cpus: {report['host_cpus']}")
    console.print("qdiscs: " + "  ".join(f"{k} {'yes' if v else 'NO'}" for k, v in report["qdiscs"].items())
                  + f"  ifb {'yes' if report['has_ifb'] else 'NO'}")  # fmt: skip
    console.print("tools: " + "  ".join(f"{k} {'yes' if v else 'NO'}" for k, v in report["tools"].items()))
    console.print(f"links will use: {report['mechanism'] or 'NOTHING (cannot shape)'}")
    for note in report["notes"]:
        console.print(f"note: {note}", style="dim")
    return 0


def _cmd_validate(args) -> int:
    spec = load_topology(args.topology)
    check_fits_host(spec)
    console.print(f"{args.topology}: ok ({spec.name}: {len(spec.nodes)} nodes, {len(spec.links)} links)")
    return 0


def _cmd_image(args) -> int:
    from emulator.image import build_node_image, node_image_tag

    base = {"base": args.base} if args.base else {}
    if args.action == "tag":
        print(node_image_tag(**base))
        return 0
    with console.status("building node image") as status:
        tag = build_node_image(force=args.force, on_line=lambda line: status.update(line[:100]), **base)
    console.print(f"node image: {tag}")
    return 0


def _cmd_link(args) -> int:
    from emulator import actions
    from emulator.lifecycle import require_single_running

    name = require_single_running(args.topology)
    if args.action == "set":
        link = actions.set_link(name, args.a, args.b, bandwidth_mbps=args.bandwidth, rtt_ms=args.rtt,
                                jitter_ms=args.jitter, loss_pct=args.loss)  # fmt: skip
        console.print(f"{name}: link {link.a}-{link.b} now {link.bandwidth_mbps:g} Mbit/s, rtt {link.rtt_ms:g} ms, "
                      f"jitter {link.jitter_ms:g} ms, loss {link.loss_pct:g}%")  # fmt: skip
    elif args.action == "cut":
        actions.cut_link(name, args.a, args.b)
        console.print(f"{name}: link {args.a}-{args.b} cut")
    else:
        actions.restore_link(name, args.a, args.b)
        console.print(f"{name}: link {args.a}-{args.b} restored")
    return 0


def _cmd_node(args) -> int:
    from emulator import actions
    from emulator.lifecycle import require_single_running

    name = require_single_running(args.topology)
    if args.action == "cpus":
        actions.set_cpus(name, args.node, args.cpus)
        console.print(f"{name}: node {args.node} cpus {args.cpus:g}")
    elif args.action == "load":
        if args.switch == "start":
            workers = actions.start_load(name, args.node, args.workers)
            console.print(f"{name}: node {args.node} running {workers} busy worker(s)")
        else:
            actions.stop_load(name, args.node)
            console.print(f"{name}: node {args.node} load stopped")
    elif args.action == "stop":
        actions.stop_node(name, args.node)
        console.print(f"{name}: node {args.node} stopped")
    else:
        actions.start_node(name, args.node)
        console.print(f"{name}: node {args.node} started")
    return 0


COMMANDS = {
    "up": _cmd_up,
    "down": _cmd_down,
    "status": _cmd_status,
    "probe": _cmd_probe,
    "doctor": _cmd_doctor,
    "validate": _cmd_validate,
    "image": _cmd_image,
    "link": _cmd_link,
    "node": _cmd_node,
}


def _sigterm_as_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except TopologyError as exc:  # a unit argument (--bandwidth 5) that cannot be read
        err.print(f"emulator: {exc}", highlight=False, soft_wrap=True)
        return 2
    logging.basicConfig(level={0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG),
                        format="%(levelname)s %(name)s: %(message)s")  # fmt: skip
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        return COMMANDS[args.command](args)
    except EmulatorError as exc:
        err.print(f"emulator: {exc}", highlight=False, soft_wrap=True, markup=False)
        return 2
    except KeyboardInterrupt:
        err.print("emulator: interrupted", highlight=False)
        return 130


if __name__ == "__main__":
    sys.exit(main())
