"""User-space delay line for kernels without sch_netem: forwards frames between two veths after rtt/2.

Runs as its own process inside a link's wire namespace (stdlib only, started by path so it imports
nothing else). Each direction is a FIFO: a frame read from one port at time t leaves through the
other port at max(t + delay +- jitter, previous departure), so jitter never reorders frames; a frame
is dropped with probability loss_pct/100, or always while the link is cut. Rate is not done here: a
tbf on each wire port's egress does it, after this process, so excess traffic is dropped at the link
(a write the tbf refuses counts as dropped) and never pushes back on the sender's socket.

Parameters change at runtime: the controller rewrites the JSON file given by --control
({"delay_ms", "jitter_ms", "loss_pct", "is_cut"}) and sends SIGHUP; frames already in flight keep
their departure times.
"""

from __future__ import annotations

import argparse
import collections
import errno
import json
import os
import random
import select
import signal
import socket
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
PACKET_IGNORE_OUTGOING = 23
SOL_PACKET = 263
SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32
BUFFER_BYTES = 8 * 1024 * 1024
MAX_FRAME_BYTES = 65536


class Params:
    def __init__(self, delay_ms: float, jitter_ms: float, loss_pct: float, is_cut: bool = False):
        self.delay_s = delay_ms / 1000
        self.jitter_s = jitter_ms / 1000
        self.loss = loss_pct / 100
        self.is_cut = is_cut

    @classmethod
    def from_file(cls, path: str, fallback: Params) -> Params:
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            return cls(
                float(data["delay_ms"]),
                float(data["jitter_ms"]),
                float(data["loss_pct"]),
                bool(data["is_cut"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"delayline: keeping parameters, cannot read {path}: {exc}", file=sys.stderr)
            return fallback


def _open(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    except OSError:
        pass  # older kernels: outgoing frames are filtered by pkttype below
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, BUFFER_BYTES)
    sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, BUFFER_BYTES)
    sock.bind((ifname, ETH_P_ALL))
    sock.setblocking(False)
    return sock


class Direction:
    """One way through the wire: frames read from src wait in a FIFO, then leave through dst."""

    def __init__(self, src: socket.socket, dst: socket.socket, rng: random.Random):
        self.src, self.dst, self.rng = src, dst, rng
        self.queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.last_departure_s = 0.0
        self.forwarded = self.dropped = 0

    def read(self, params: Params, now_s: float) -> None:
        while True:
            try:
                frame, addr = self.src.recvfrom(MAX_FRAME_BYTES)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in (errno.ENETDOWN, errno.ENXIO):
                    return
                raise
            if addr[2] == PACKET_OUTGOING:
                continue
            if params.is_cut or (params.loss > 0 and self.rng.random() < params.loss):
                self.dropped += 1
                continue
            delay_s = params.delay_s
            if params.jitter_s > 0:
                delay_s = max(0.0, delay_s + self.rng.uniform(-params.jitter_s, params.jitter_s))
            departure_s = max(now_s + delay_s, self.last_departure_s)
            self.last_departure_s = departure_s
            self.queue.append((departure_s, frame))

    def release(self, now_s: float) -> None:
        queue = self.queue
        while queue and queue[0][0] <= now_s:
            _, frame = queue.popleft()
            try:
                self.dst.send(frame)
                self.forwarded += 1
            except OSError:
                self.dropped += 1  # peer down (node stopped): the frame is lost, like on a dead wire

    def next_departure_s(self) -> float | None:
        return self.queue[0][0] if self.queue else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="delayline")
    parser.add_argument("--topology", required=True, help="label: the topology this process belongs to")
    parser.add_argument("--link", required=True, help="label: the link index within the topology")
    parser.add_argument("--port-a", required=True)
    parser.add_argument("--port-b", required=True)
    parser.add_argument("--delay-ms", type=float, required=True, help="one-way delay (rtt/2)")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="one-way jitter, uniform +-")
    parser.add_argument("--loss-pct", type=float, default=0.0)
    parser.add_argument("--control", required=True, help="JSON parameter file re-read on SIGHUP")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    params = Params(args.delay_ms, args.jitter_ms, args.loss_pct)
    if os.path.exists(args.control):
        params = Params.from_file(args.control, params)

    def on_hup(signum, frame):
        # Reload inside the handler: select() is retried after a handler returns (PEP 475), so a flag
        # checked in the loop would wait for the next frame or timeout.
        nonlocal params
        params = Params.from_file(args.control, params)

    def on_term(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    sock_a, sock_b = _open(args.port_a), _open(args.port_b)
    rng = random.Random(args.seed)
    ab, ba = Direction(sock_a, sock_b, rng), Direction(sock_b, sock_a, rng)
    readable_map = {sock_a: ab, sock_b: ba}
    print(
        f"delayline: link {args.link} of {args.topology} ready, pid {os.getpid()}",
        file=sys.stderr,
        flush=True,
    )
    while True:
        now_s = time.monotonic()
        pending = [t for t in (ab.next_departure_s(), ba.next_departure_s()) if t is not None]
        timeout_s = max(0.0, min(pending) - now_s) if pending else 0.5
        try:
            readable, _, _ = select.select([sock_a, sock_b], [], [], timeout_s)
        except InterruptedError:
            continue
        now_s = time.monotonic()
        for sock in readable:
            readable_map[sock].read(params, now_s)
        ab.release(now_s)
        ba.release(now_s)


if __name__ == "__main__":
    sys.exit(main())
