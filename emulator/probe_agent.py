"""Probe agent run inside node containers (stdlib only; its source is passed to `python3 -c`).

serve:  UDP echo on ECHO_PORT and a TCP sink on BULK_PORT. The sender first writes one JSON line
        {"warmup_s": w}; the sink then counts payload bytes and, when the sender half-closes,
        replies with the steady-state rate: bytes received after the first w seconds, divided by
        the time from then to the last byte (so slow start does not count against the link).
client: echo RTT (median of --count round trips after one warm-up that also resolves ARP) and a
        bulk transfer of --duration-s seconds; prints one JSON object.
"""

import json
import socket
import statistics
import sys
import threading
import time

ECHO_PORT = 7007
BULK_PORT = 5001


def _echo_server():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", ECHO_PORT))
    while True:
        data, addr = sock.recvfrom(2048)
        sock.sendto(data, addr)


def _sink(conn):
    with conn:
        header = b""
        while not header.endswith(b"\n"):
            chunk = conn.recv(1)
            if not chunk:
                return
            header += chunk
        warmup_s = float(json.loads(header)["warmup_s"])
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


def _throughput(host, duration_s, warmup_s, timeout_s):
    sock = socket.create_connection((host, BULK_PORT), timeout=timeout_s)
    sock.sendall((json.dumps({"warmup_s": warmup_s}) + "\n").encode())
    buf = b"\0" * 65536
    end = time.monotonic() + duration_s
    while time.monotonic() < end:
        sock.sendall(buf)
    sock.shutdown(socket.SHUT_WR)
    sock.settimeout(timeout_s + duration_s)
    reply = b""
    while not reply.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    return json.loads(reply) if reply else {"error": "no reply from sink"}


def client(host, count, duration_s, warmup_s, timeout_s):
    out = {"host": host}
    rtt_ms, received = _rtt_ms(host, count, timeout_s)
    out.update({"measured_rtt_ms": rtt_ms, "echo_replies": received, "echo_sent": count})
    if rtt_ms is None:
        out["error"] = "no echo reply"
    elif duration_s > 0:
        try:
            out.update(_throughput(host, duration_s, warmup_s, timeout_s))
        except OSError as exc:
            out["error"] = f"bulk transfer failed: {exc}"
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve()
    else:
        _, _, host, count, duration_s, warmup_s, timeout_s = sys.argv
        client(host, int(count), float(duration_s), float(warmup_s), float(timeout_s))
