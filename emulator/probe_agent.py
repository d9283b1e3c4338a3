"""Probe agent run inside node containers (stdlib only; its source is passed to `python3 -c`).

serve:  UDP echo on ECHO_PORT, a UDP train sink on TRAIN_PORT and a TCP server on BULK_PORT. A TCP
        client first writes one JSON line: {"warmup_s": w} starts a bulk transfer (the sink counts
        payload bytes and, when the sender half-closes, replies with the steady-state rate: bytes after
        the first w seconds over the time from then to the last byte, so slow start does not count);
        {"train": id} asks for the counts of UDP train id (and forgets it).
client: one JSON argument {"host", "count", "duration_s", "warmup_s", "timeout_s", "link_mbps"}:
        echo RTT (median of count round trips after one warm-up that also resolves ARP), a loss train
        (small datagrams at a quarter of the link rate: what is lost there is the link's random loss),
        a rate train (full frames offered at RATE_FACTOR x the link rate: the receiver's arrival rate is
        what the link carries) and a TCP bulk transfer (goodput, loss-bound); prints one JSON object.
train:  one JSON argument {"host", "mbps", "frame_bytes", "duration_s", "timeout_s"}: one UDP train at
        a fixed offered rate; prints sent, received, loss and rates (used by tests and benchmarks).
"""

import json
import socket
import statistics
import struct
import sys
import threading
import time

ECHO_PORT = 7007
TRAIN_PORT = 7008
BULK_PORT = 5001
# Ethernet (14) + IPv4 (20) + UDP (8): tc's rate counts a frame's bytes from the Ethernet header on.
UDP_OVERHEAD_BYTES = 42
FULL_FRAME_BYTES = 1514
LOSS_FRAME_BYTES = 100
LOSS_RATE_SHARE = 0.25
LOSS_MAX_PPS = 2000
RATE_FACTOR = 1.25
HEADER = struct.Struct("!QI")  # train id, sequence number
_trains = {}
_trains_lock = threading.Lock()


def _echo_server():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", ECHO_PORT))
    while True:
        data, addr = sock.recvfrom(2048)
        sock.sendto(data, addr)


SO_TIMESTAMPNS = 35  # Linux: each datagram's arrival time as the kernel saw it (struct timespec)
TIMESPEC = struct.Struct("@qq")


def _socket_drops(port):
    """Datagrams the kernel dropped for our UDP socket on port (full receive buffer): /proc/net/udp "drops"."""
    try:
        with open("/proc/net/udp") as fh:
            for line in fh.readlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    return int(fields[-1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _train_sink():
    """Per train: datagrams received, their frame bytes, first and last arrival (kernel timestamps, so a
    sink scheduled late still times the link) and the socket's drop counter when the train began."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.bind(("0.0.0.0", TRAIN_PORT))
    while True:
        data, ancdata, _, _ = sock.recvmsg(2048, 64)
        now = time.time()
        for level, kind, value in ancdata:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= TIMESPEC.size:
                sec, nsec = TIMESPEC.unpack_from(value)
                now = sec + nsec / 1e9
        if len(data) < HEADER.size:
            continue
        train_id, _ = HEADER.unpack_from(data)
        frame = len(data) + UDP_OVERHEAD_BYTES
        with _trains_lock:
            t = _trains.get(train_id)
            if t is None:
                _trains[train_id] = {"received": 1, "bytes_after_first": 0, "first_s": now, "last_s": now,
                                     "frame": frame, "drops_at_start": _socket_drops(TRAIN_PORT)}  # fmt: skip
            else:
                t["received"] += 1
                t["bytes_after_first"] += frame
                t["last_s"] = max(t["last_s"], now)


def _train_report(train_id):
    """Datagrams the sink's own socket dropped (a starved receiver, not the link) count as arrived."""
    with _trains_lock:
        t = _trains.pop(train_id, None)
    if t is None:
        return {"received": 0, "receiver_drops": 0}
    drops = max(0, _socket_drops(TRAIN_PORT) - t["drops_at_start"])
    span_s = t["last_s"] - t["first_s"]
    out = {"received": t["received"], "receiver_drops": drops, "span_s": span_s}
    if t["received"] > 1 and span_s > 0:
        out["arrival_mbps"] = (t["bytes_after_first"] + drops * t["frame"]) * 8 / span_s / 1e6
    return out


def _sink(conn):
    with conn:
        header = b""
        while not header.endswith(b"\n"):
            chunk = conn.recv(1)
            if not chunk:
                return
            header += chunk
        request = json.loads(header)
        if "train" in request:
            conn.sendall((json.dumps(_train_report(int(request["train"]))) + "\n").encode())
            return
        warmup_s = float(request["warmup_s"])
        first_s = None
        start_bytes, start_s, total, last_s = 0, None, 0, None
        while True:
            data = conn.recv(262144)
            if not data:
                break
            now = time.monotonic()
            if first_s is None:
                first_s = now
            total += len(data)
            last_s = now
            if start_s is None and now - first_s >= warmup_s:
                start_s, start_bytes = now, total
        if start_s is None or last_s is None or last_s - start_s < 0.2:
            result = {"error": "transfer too short to measure", "bytes": total}
        else:
            mbps = (total - start_bytes) * 8 / (last_s - start_s) / 1e6
            result = {"measured_mbps": mbps, "bytes": total, "window_s": last_s - start_s}
        conn.sendall((json.dumps(result) + "\n").encode())


def serve():
    threading.Thread(target=_echo_server, daemon=True).start()
    threading.Thread(target=_train_sink, daemon=True).start()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", BULK_PORT))
    srv.listen(8)
    print("probe agent serving", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=_sink, args=(conn,), daemon=True).start()


def _rtt_ms(host, count, timeout_s):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(timeout_s)
    samples = []
    for i in range(count + 1):
        payload = f"{i}".encode().ljust(56, b".")
        start = time.perf_counter()
        sock.sendto(payload, (host, ECHO_PORT))
        try:
            while True:
                data, _ = sock.recvfrom(2048)
                if data == payload:
                    break
        except TimeoutError:
            continue
        if i > 0:
            samples.append((time.perf_counter() - start) * 1000)
        time.sleep(0.02)
    return statistics.median(samples) if samples else None, len(samples)


def _reply(sock):
    """The sink's one-line JSON answer (an error document when it closes without one)."""
    reply = b""
    while not reply.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    return json.loads(reply) if reply else {"error": "no reply from sink"}


def _ask(host, request, timeout_s):
    sock = socket.create_connection((host, BULK_PORT), timeout=timeout_s)
    with sock:
        sock.sendall((json.dumps(request) + "\n").encode())
        return _reply(sock)


def train(host, mbps, frame_bytes, duration_s, timeout_s, max_pps=None):
    """Offer UDP at mbps (frame bytes as tc counts them) for duration_s, paced in 1 ms slots.

    The socket blocks when the sender's own qdisc pushes back; offered_mbps then falls under mbps,
    which is how local back-pressure (no drop at a bottleneck) shows up.
    """
    pps = mbps * 1e6 / (frame_bytes * 8)
    if max_pps:
        pps = min(pps, max_pps)
    total = max(2, int(pps * duration_s))
    train_id = time.time_ns() & 0x7FFFFFFFFFFFFFFF
    pad = b"\0" * (frame_bytes - UDP_OVERHEAD_BYTES - HEADER.size)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = send_errors = 0
    start = time.monotonic()
    while sent < total:
        due = min(total, int((time.monotonic() - start) * pps) + 1)
        while sent < due:
            try:
                sock.sendto(HEADER.pack(train_id, sent) + pad, (host, TRAIN_PORT))
            except OSError:  # ENOBUFS from a full local queue: offered, not carried
                send_errors += 1
            sent += 1
        wait_s = sent / pps - (time.monotonic() - start)
        if wait_s > 0:
            time.sleep(min(wait_s, 0.001))
    sent_s = time.monotonic() - start
    time.sleep(timeout_s)  # the last datagrams are still in the link (delay, queue)
    report = _ask(host, {"train": train_id}, max(3.0, timeout_s))  # a lost SYN is resent after 1 s
    received = report.get("received", 0)
    receiver_drops = report.get("receiver_drops", 0)
    return {
        "sent": sent,
        "send_errors": send_errors,
        "received": received,
        "receiver_drops": receiver_drops,
        "loss_pct": 100.0 * max(0.0, 1 - (received + receiver_drops) / sent),
        "offered_mbps": sent * frame_bytes * 8 / sent_s / 1e6,
        "arrival_mbps": report.get("arrival_mbps"),
    }


def _throughput(host, duration_s, warmup_s, timeout_s):
    sock = socket.create_connection((host, BULK_PORT), timeout=timeout_s)
    sock.sendall((json.dumps({"warmup_s": warmup_s}) + "\n").encode())
    buf = b"\0" * 65536
    end = time.monotonic() + duration_s
    while time.monotonic() < end:
        sock.sendall(buf)
    sock.shutdown(socket.SHUT_WR)
    sock.settimeout(timeout_s + duration_s)
    return _reply(sock)


def client(host, count, duration_s, warmup_s, timeout_s, link_mbps):
    out = {"host": host}
    rtt_ms, received = _rtt_ms(host, count, timeout_s)
    out.update({"measured_rtt_ms": rtt_ms, "echo_replies": received, "echo_sent": count})
    if rtt_ms is None:
        out["error"] = "no echo reply"
    elif duration_s > 0:
        train_s = max(0.5, duration_s / 2)
        drain_s = 2 * (rtt_ms or 0) / 1000 + 0.3  # the last datagrams' delay plus a full queue
        try:
            loss = train(host, link_mbps * LOSS_RATE_SHARE, LOSS_FRAME_BYTES, train_s, drain_s, LOSS_MAX_PPS)
            out["measured_loss_pct"] = loss["loss_pct"]
            out["loss_train"] = loss
            rate = train(host, link_mbps * RATE_FACTOR, FULL_FRAME_BYTES, train_s, drain_s)
            out["measured_rate_mbps"] = rate["arrival_mbps"]
            out["rate_train"] = rate
            out.update(_throughput(host, duration_s, warmup_s, timeout_s))
        except OSError as exc:
            out["error"] = f"bulk transfer failed: {exc}"
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve()
    elif sys.argv[1] == "train":
        opts = json.loads(sys.argv[2])
        print(json.dumps(train(opts["host"], float(opts["mbps"]), int(opts["frame_bytes"]),
                               float(opts["duration_s"]), float(opts["timeout_s"]))), flush=True)  # fmt: skip
    else:
        opts = json.loads(sys.argv[2])
        client(opts["host"], int(opts["count"]), float(opts["duration_s"]), float(opts["warmup_s"]),
               float(opts["timeout_s"]), float(opts["link_mbps"]))  # fmt: skip
