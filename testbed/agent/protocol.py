"""Wire format between agents (no pickle): a length-prefixed JSON header, then raw tensor bytes.

    frame   = u32 big-endian header length, header (UTF-8 JSON object), payload (header["nbytes"] bytes)
    request = {"op": "ping" | "load" | "infer" | "benchmark", ...}; a tensor travels as
              {"shape": [..], "dtype": "float32", "nbytes": N} with N raw C-order bytes after the header
    reply   = {"ok": true, ...} or {"ok": false, "error": "..."}; a tensor reply carries shape/dtype/nbytes

Every received frame is checked before its payload is read: header size, JSON object, allowed dtype,
nbytes equal to shape x itemsize, and a size cap. A bad frame raises ProtocolError; the server answers
it with an error reply and keeps serving.
"""

from __future__ import annotations

import json
import math
import socket
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from testbed.errors import ConnectionClosed, ProtocolError

MAX_HEADER_BYTES = 64 * 1024
DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024 * 1024
ALLOWED_DTYPES = frozenset({"float16", "float32", "float64", "int8", "uint8", "int32", "int64", "bool"})
_LEN = struct.Struct(">I")


@dataclass(frozen=True)
class Frame:
    header: dict[str, Any]
    payload: bytes = b""

    def tensor(self) -> np.ndarray:
        """The payload as an array of the header's shape and dtype (validated on receipt)."""
        shape = tuple(self.header["shape"])
        return np.frombuffer(self.payload, dtype=np.dtype(self.header["dtype"])).reshape(shape)


def tensor_header(array: np.ndarray) -> dict[str, Any]:
    return {"shape": [int(d) for d in array.shape], "dtype": array.dtype.name, "nbytes": int(array.nbytes)}


def _recv_exact(sock: socket.socket, count: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < count:
        chunk = sock.recv(min(count - len(chunks), 1 << 20))
        if not chunk:
            raise ConnectionClosed()
        chunks += chunk
    return bytes(chunks)


def check_tensor_header(header: dict[str, Any], max_payload_bytes: int) -> None:
    shape, dtype, nbytes = header.get("shape"), header.get("dtype"), header.get("nbytes")
    if dtype not in ALLOWED_DTYPES:
        raise ProtocolError(f"dtype {dtype!r} is not allowed; use one of {', '.join(sorted(ALLOWED_DTYPES))}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                               for d in shape) or len(shape) > 8:
        raise ProtocolError(f"shape {shape!r} must be a list of at most 8 non-negative integers")
    expected = math.prod(shape) * np.dtype(dtype).itemsize
    if nbytes != expected:
        raise ProtocolError(f"nbytes {nbytes!r} does not match shape {shape} x {dtype} ({expected} bytes)")


def read_frame(sock: socket.socket, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> Frame:
    """One frame; the payload is read only after its header has passed every check."""
    (length,) = _LEN.unpack(_recv_exact(sock, _LEN.size))
    if length == 0 or length > MAX_HEADER_BYTES:
        raise ProtocolError(f"header of {length} bytes is outside 1..{MAX_HEADER_BYTES}", fatal=True)
    raw = _recv_exact(sock, length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("header is not UTF-8 JSON", fatal=True) from None
    if not isinstance(header, dict):
        raise ProtocolError("header is not a JSON object", fatal=True)
    nbytes = header.get("nbytes", 0)
    if not isinstance(nbytes, int) or isinstance(nbytes, bool) or nbytes < 0:
        raise ProtocolError(f"nbytes {nbytes!r} must be a non-negative integer", fatal=True)
    if nbytes > max_payload_bytes:
        # The payload is not read, so the stream cannot continue: reply, then close.
        raise ProtocolError(f"payload of {nbytes} bytes exceeds the cap of {max_payload_bytes} bytes", fatal=True)
    payload = _recv_exact(sock, nbytes) if nbytes else b""
    if "dtype" in header or "shape" in header:
        check_tensor_header(header, max_payload_bytes)
    return Frame(header, payload)


def write_frame(sock: socket.socket, header: dict[str, Any], payload: bytes | memoryview = b"") -> None:
    header = dict(header)
    header["nbytes"] = len(payload)
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    if len(raw) > MAX_HEADER_BYTES:
        raise ProtocolError(f"header of {len(raw)} bytes is too large")
    sock.sendall(_LEN.pack(len(raw)) + raw)
    if len(payload):
        sock.sendall(payload)


def write_tensor(sock: socket.socket, header: dict[str, Any], array: np.ndarray) -> None:
    array = np.ascontiguousarray(array)
    write_frame(sock, {**header, **tensor_header(array)}, memoryview(array).cast("B"))


def error_reply(message: str) -> dict[str, Any]:
    return {"ok": False, "error": message}
