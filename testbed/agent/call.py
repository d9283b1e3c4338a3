"""`python -m testbed.agent.call OP [JSON]`: talk to the agent on this node's loopback; print the reply.

The orchestrator runs this inside a container (``Emulation.exec``), so the agent never listens outside the
emulated network. Its stdout is exactly one JSON document, the reply (an unreachable agent gives
``{"ok": false, "error": ...}``); diagnostics go to stderr, which the host sends to a log file, so the host
parses the whole stdout (`testbed.run.agents`). A benchmark's profile files travel base64-encoded in the
reply and are also written under ``--out`` when given.
"""

from __future__ import annotations

import argparse
import base64
import json
import socket
import sys
from pathlib import Path

from testbed.agent.protocol import ProtocolError, read_frame, write_frame
from testbed.agent.server import DEFAULT_PORT


def call(op: str, fields: dict, port: int = DEFAULT_PORT, timeout_s: float = 3600.0, host: str = "127.0.0.1"):
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        write_frame(sock, {"op": op, **fields})
        return read_frame(sock, 1 << 31)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.agent.call")
    parser.add_argument("op")
    parser.add_argument("fields", nargs="?", default="{}", help="JSON object of the request's fields")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--out", help="folder for a benchmark's profile files")
    args = parser.parse_args(argv)
    try:
        frame = call(args.op, json.loads(args.fields), args.port, args.timeout)
    except (OSError, ProtocolError, ValueError) as exc:
        print(json.dumps({"ok": False, "error": f"agent call failed: {exc}"}))
        return 1
    header = dict(frame.header)
    offset = 0
    for entry in header.get("files", []):
        data = frame.payload[offset:offset + entry["nbytes"]]
        offset += entry["nbytes"]
        entry["b64"] = base64.b64encode(data).decode()  # profiles are small; the caller writes them out
        if args.out:
            path = Path(args.out) / entry["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    print(json.dumps(header))
    return 0 if header.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
