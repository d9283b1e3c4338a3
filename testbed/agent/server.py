"""The agent's service: one TCP listener per emulated-network address (never 0.0.0.0).

A node holds one *stage*: a model's block range and the next hop on the configuration's path. An
``infer`` request runs the stage's blocks on the tensor, forwards the result to the next hop and
answers with the final output plus every hop's compute and transfer timings. An empty range
(last_block = first_block - 1) makes the node a relay: it forwards the tensor that block first_block
takes, unchanged. The reply comes back on the connection each hop was called on, so it retraces the
path, relays included. ``drive`` makes the
device the caller: it feeds the model's input through the path N times and records each request.
``benchmark`` runs ``scission benchmark`` in place (under this container's CPU limit) and returns the
profile's files. A stage's blocks run as one compiled callable (``scission.benchmark.compiled``), in the runtime
``load`` names (default tf-function; eager only on request), the way a deployment serves them; compiled ranges
are cached per (model, range, runtime), so only a range not served before pays its compile time. Containers on one host share the kernel's monotonic clock, so a transfer is timed
from the sender's ``sent_at_ns`` to the moment the receiver holds the whole tensor.
"""

from __future__ import annotations

import concurrent.futures
import gc
import json
import logging
import os
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scission import runtimes
from scission.errors import UnknownRuntime
from testbed.agent.protocol import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    ConnectionClosed,
    Frame,
    ProtocolError,
    error_reply,
    read_frame,
    write_frame,
    write_tensor,
)

log = logging.getLogger(__name__)
DEFAULT_PORT = 7200
FORWARD_TIMEOUT_S = 60.0
PRECONNECT_TIMEOUT_S = 5.0


@dataclass
class Stage:
    model: str
    first_block: int
    last_block: int  # first_block - 1, no blocks: forward the tensor as it is (a relay, or an idle device)
    compiled: Any  # the range as one callable (numpy -> numpy), None for no blocks
    input_shape: tuple[int, ...]  # without the batch dimension
    next_host: str | None
    next_port: int
    example_input: np.ndarray | None


class Agent:
    def __init__(self, node: str, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES):
        self.node = node
        self.max_payload_bytes = max_payload_bytes
        self.stage: Stage | None = None
        self._models: dict[str, tuple[Any, Any, Any]] = {}
        self._next: socket.socket | None = None
        self._next_addr: tuple[str, int] | None = None
        # One persistent connection per next hop, kept across stage loads: a new connection per round would
        # start every measured request in TCP slow start (+0.1 s for 600 KB on a 20 Mbit/s, 45 ms link).
        self._pool: dict[tuple[str, int], socket.socket] = {}
        self._lock = threading.Lock()
        self._caller = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="caller")
        # Compiled callables, kept for the agent's life: a range deployed again in a later round (or a later
        # configuration) needs no second trace; the whole model under (model, 0, last, runtime) serves speed too.
        self._compiled: dict[tuple[str, int, int, str], Any] = {}

    # ------------------------------------------------------------------------------------ operations

    def handle(self, frame: Frame) -> tuple[dict[str, Any], np.ndarray | bytes | None]:
        op = frame.header.get("op")
        if op == "ping":
            return {"ok": True, "node": self.node, "stage": self._stage_summary()}, None
        if op == "load":
            return self._load(frame.header), None
        if op == "infer":
            return self._infer(frame)
        if op == "drive":
            return self._drive(frame.header), None
        if op == "benchmark":
            return self._benchmark(frame.header)
        if op == "speed":
            return self._speed(frame.header), None
        if op == "recalibrate":
            return self._recalibrate(frame.header), None
        return error_reply(f"unknown op {op!r}; ops are ping, load, infer, drive, benchmark, speed"), None

    def _stage_summary(self) -> dict[str, Any] | None:
        s = self.stage
        if s is None:
            return None
        return {"model": s.model, "first_block": s.first_block, "last_block": s.last_block,
                "next": f"{s.next_host}:{s.next_port}" if s.next_host else None}

    def _model(self, name: str, seed: int, model_file: str | None = None):
        if name not in self._models:
            import keras

            from scission.benchmark.graph import analyse
            from scission.benchmark.inputs import synthetic_input
            from scission.benchmark.models import ModelSource, load

            keras.utils.set_random_seed(seed)  # every node builds identical random weights
            loaded = load(ModelSource(name, model_file=model_file))
            analysis = analyse(loaded.model)
            shape = tuple(loaded.model.inputs[0].shape)
            example = synthetic_input(shape, "float32", loaded.preprocess)
            self._models[name] = (loaded, analysis, example)
        return self._models[name]

    def _load(self, header: dict[str, Any]) -> dict[str, Any]:
        try:
            model = str(header["model"])
            first, last = int(header["first_block"]), int(header["last_block"])
            seed = int(header.get("seed", 0))
        except (KeyError, TypeError, ValueError):
            return error_reply("load needs model, first_block and last_block")
        try:
            runtime = _runtime(header)
        except UnknownRuntime as exc:
            return error_reply(f"load: {exc}")
        started = time.perf_counter()
        try:
            loaded, analysis, example = self._model(model, seed, header.get("model_file"))
        except Exception as exc:  # a model that cannot be built is the caller's problem, not the agent's end
            return error_reply(f"cannot load {model}: {exc}")
        blocks = analysis.blocks
        if not (0 <= first <= len(blocks)) or last >= len(blocks) or last < first - 1:
            return error_reply(f"block range {first}-{last} is outside 0-{len(blocks) - 1} for {model} "
                               f"(last = first - 1: no blocks, forward the tensor)")
        if first == 0:
            input_shape = tuple(int(d) for d in loaded.model.inputs[0].shape[1:])
        else:
            input_shape = tuple(int(d) for d in blocks[first - 1].output_shape[1:])
        # Compile the range once (its first call is the warm-up), on the thread that serves requests: kernels and
        # TensorFlow's per-thread state are then warm for the first measured request.
        compiled, compile_s = None, 0.0
        if last >= first:
            try:
                compiled, compile_s = self._caller.submit(self._compiled_range, model, first, last, runtime,
                                                          self._warm_input(blocks, first, example)).result()
            except Exception as exc:  # even the fallback failed: say so, keep serving the previous stage
                return error_reply(f"cannot compile {model} blocks {first}-{last} in {runtime}: "
                                   f"{str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}")
        nxt = header.get("next")
        host, port = (None, 0)
        if nxt:
            host, _, port_text = str(nxt).rpartition(":")
            port = int(port_text)
        with self._lock:
            self._next, self._next_addr = None, None
            self.stage = Stage(model, first, last, compiled, input_shape, host, port, example)
        # Connect to the next hop now, so the first request does not pay the TCP handshake (one emulated RTT).
        if host is not None:
            with self._lock:
                try:
                    self._connect((host, port), connect_timeout_s=PRECONNECT_TIMEOUT_S)
                except OSError:
                    self._close_next()  # the hop may come up later: the first request connects then
        # The model and TensorFlow are long-lived: keep the collector from re-scanning them on every request.
        gc.collect()
        gc.freeze()
        return {"ok": True, "node": self.node, "load_s": time.perf_counter() - started,
                "input_shape": list(input_shape), "blocks": len(blocks),
                "runtime": compiled.runtime if compiled is not None else runtime, "requested_runtime": runtime,
                "compile_s": compile_s, "cached": compiled is not None and compile_s == 0.0,
                "note": compiled.note if compiled is not None else None}

    def _compiled_range(self, model: str, first: int, last: int, runtime: str, example: np.ndarray):
        """The cached callable for blocks first..last in ``runtime``, and the compile time this call paid (0 when
        cached). A live re-partition to a range not served before pays it: it is measured, never hidden."""
        key = (model, first, last, runtime)
        if key in self._compiled:
            return self._compiled[key], 0.0
        from scission.benchmark.compiled import compile_range
        from scission.benchmark.graph import graph_model

        loaded, analysis, _ = self._models[model]
        compiled = compile_range(analysis.blocks[first:last + 1], runtime, example, graph_model(loaded.model),
                                 _threads())
        if compiled.note:
            log.warning("%s", compiled.note)
        self._compiled[key] = compiled
        return compiled, compiled.compile_s

    def _warm_input(self, blocks, first: int, example: np.ndarray):
        if first == 0:
            return example
        shape = (1,) + tuple(int(d) for d in blocks[first - 1].output_shape[1:])
        return np.zeros(shape, dtype=np.dtype(blocks[first - 1].output_dtype))

    def _abort_next(self) -> None:
        """Unblock a forward stuck on a dead hop (without its lock: the stuck thread holds it)."""
        sock = self._next
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _close_next(self) -> None:
        if self._next is not None:
            self._pool.pop(self._next_addr, None)
            try:
                self._next.close()
            finally:
                self._next = None

    def _connect(self, addr: tuple[str, int], connect_timeout_s: float = FORWARD_TIMEOUT_S) -> None:
        """Open (or keep) the persistent connection to the next hop; the caller holds the lock."""
        if self._next is not None and self._next_addr == addr:
            return
        sock = self._pool.get(addr)
        if sock is None:
            sock = socket.create_connection(addr, timeout=connect_timeout_s)
            sock.settimeout(FORWARD_TIMEOUT_S)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._pool[addr] = sock
        self._next, self._next_addr = sock, addr

    def _forward(self, array: np.ndarray, stage: Stage) -> tuple[Frame, float]:
        """Send to the next hop on one persistent connection; returns its reply and our serialise time."""
        addr = (stage.next_host, stage.next_port)
        for attempt in (0, 1):
            try:
                self._connect(addr)
                started = time.perf_counter()
                write_tensor(self._next, {"op": "infer", "sent_at_ns": time.monotonic_ns()}, array)
                send_s = time.perf_counter() - started
                return read_frame(self._next, 1 << 31), send_s
            except (OSError, ConnectionClosed):
                self._close_next()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _infer(self, frame: Frame) -> tuple[dict[str, Any], np.ndarray | None]:
        received_ns = time.monotonic_ns()
        stage = self.stage
        if stage is None:
            return error_reply(f"node {self.node} has no stage loaded; send load first"), None
        if "shape" not in frame.header:
            return error_reply("infer needs a tensor (shape, dtype, nbytes and the raw bytes)"), None
        shape = tuple(frame.header["shape"])
        if len(shape) != len(stage.input_shape) + 1 or shape[0] < 1 or tuple(shape[1:]) != stage.input_shape:
            return error_reply(f"tensor shape {list(shape)} does not match this stage's input "
                               f"[batch, {', '.join(map(str, stage.input_shape))}]"), None
        sent_at = frame.header.get("sent_at_ns")
        transfer_s = (received_ns - sent_at) / 1e9 if isinstance(sent_at, int) else None
        if stage.compiled is not None and shape[0] != 1:
            return error_reply(f"tensor shape {list(shape)}: this stage is compiled for batch 1"), None
        started = time.perf_counter()
        value = frame.tensor()
        if stage.compiled is not None:
            value = stage.compiled(value)
        compute_s = time.perf_counter() - started
        hop = {"node": self.node, "first_block": stage.first_block, "last_block": stage.last_block,
               "compute_s": compute_s, "transfer_in_s": transfer_s, "bytes_in": len(frame.payload)}
        if stage.next_host is None:
            return {"ok": True, "hops": [hop]}, value
        with self._lock:
            try:
                reply, send_s = self._forward(value, stage)
            except (OSError, ProtocolError) as exc:
                return error_reply(f"node {self.node}: next hop {stage.next_host}:{stage.next_port} failed: "
                                   f"{exc or type(exc).__name__}"), None
        hop["send_s"] = send_s
        if not reply.header.get("ok"):
            return {"ok": False, "error": reply.header.get("error"), "hops": [hop]}, None
        return {"ok": True, "hops": [hop, *reply.header.get("hops", [])]}, reply.tensor()

    def _drive(self, header: dict[str, Any]) -> dict[str, Any]:
        """Be the caller: send the model's input through the loaded path ``requests`` times."""
        stage = self.stage
        if stage is None or stage.example_input is None:
            return error_reply(f"node {self.node} has no stage loaded; send load first")
        count = int(header.get("requests", 1))
        timeout_s = float(header.get("timeout_s", 30.0))
        stop_on_failure = bool(header.get("stop_on_failure", False))
        records = []
        for index in range(count):
            started = time.perf_counter()
            record: dict[str, Any] = {"request": index}
            try:
                done = self._call_with_timeout(stage.example_input, timeout_s)
                reply_header, output = done
                record["latency_s"] = time.perf_counter() - started
                record["ok"] = bool(reply_header.get("ok"))
                record["hops"] = reply_header.get("hops", [])
                if not record["ok"]:
                    record["error"] = reply_header.get("error")
                else:
                    record["output_shape"] = list(np.shape(output))
            except TimeoutError:
                record.update(ok=False, latency_s=time.perf_counter() - started,
                              error=f"request {index} timed out after {timeout_s:g} s")
                self._abort_next()
            records.append(record)
            if not record["ok"] and stop_on_failure:
                break
        return {"ok": True, "node": self.node, "records": records}

    def _call_with_timeout(self, array: np.ndarray, timeout_s: float):
        """Run one request on the long-lived caller thread (a new thread per request would pay TensorFlow's
        per-thread set-up inside the timing); a request stuck on a dead hop is abandoned after timeout_s."""
        frame = Frame({"op": "infer", **_tensor_meta(array)}, array.tobytes())
        future = self._caller.submit(self._infer, frame)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            raise TimeoutError from None
        except Exception as exc:  # reported as a failed request, never kills the agent
            return error_reply(f"{type(exc).__name__}: {exc}"), None

    def _speed(self, header: dict[str, Any]) -> dict[str, Any]:
        """Compute-speed probe: time ``passes`` whole passes of the model as one compiled callable in ``runtime``
        (the runner passes the one the node's profile was timed in), on the thread that serves requests. On a
        throttled node of a shared host, the CPU work a quota buys drifts by tens of percent within minutes;
        probes next to each measurement show that drift (a diagnostic beside the profile's prediction)."""
        try:
            model = str(header["model"])
            passes = int(header.get("passes", 2))
            seed = int(header.get("seed", 0))
        except (KeyError, TypeError, ValueError):
            return error_reply("speed needs model and an integer passes")
        if not 1 <= passes <= 100:
            return error_reply(f"passes {passes} must be 1..100")
        try:
            runtime = _runtime(header)
        except UnknownRuntime as exc:
            return error_reply(f"speed: {exc}")
        try:
            loaded, analysis, example = self._model(model, seed, header.get("model_file"))
        except Exception as exc:
            return error_reply(f"cannot load {model}: {exc}")

        def run() -> tuple[list[float], Any, float]:
            # The compile's first call is its warm-up; a cached callable is warm already.
            compiled, compile_s = self._compiled_range(model, 0, len(analysis.blocks) - 1, runtime, example)
            samples = []
            for _ in range(passes):
                started = time.perf_counter()
                compiled(example)
                samples.append(time.perf_counter() - started)
            return samples, compiled, compile_s

        samples, compiled, compile_s = self._caller.submit(run).result()
        return {"ok": True, "node": self.node, "model": model, "pass_s": samples,
                "median_s": float(np.median(samples)), "runtime": compiled.runtime, "compile_s": compile_s,
                "note": compiled.note}

    def _recalibrate(self, header: dict[str, Any]) -> dict[str, Any]:
        """`scission recalibrate`'s passes on this node: the whole model as one compiled callable in ``runtime``,
        timed ``passes`` times on the serving thread; the caller rescales its copy of the profile. A model the
        node cannot build, or an unknown runtime, is an error reply; the agent keeps serving."""
        from scission import runtimes
        from scission.errors import ScissionError

        try:
            model = str(header["model"])
            passes = int(header.get("passes", 1))
            runtime = str(header.get("runtime") or runtimes.FALLBACK)
            seed = int(header.get("seed", 0))
        except (KeyError, TypeError, ValueError):
            return error_reply("recalibrate needs model, an integer passes and a runtime name")
        if not 1 <= passes <= 100:
            return error_reply(f"passes {passes} must be 1..100")
        try:
            runtimes.check_runtime(runtime, allow_auto=False)
        except ScissionError as exc:
            return error_reply(str(exc))
        started = time.perf_counter()
        try:
            loaded, analysis, example = self._model(model, seed, header.get("model_file"))
        except Exception as exc:
            return error_reply(f"node {self.node} cannot build {model}: {exc}")
        built = time.perf_counter()

        def run():
            from scission.benchmark.graph import graph_model
            from scission.benchmark.recalibrate import whole_passes

            return whole_passes(analysis.blocks, graph_model(loaded.model), example, runtime, passes)

        compiled, samples = self._caller.submit(run).result()
        wall_s = time.perf_counter() - started
        return {"ok": True, "node": self.node, "model": model, "pass_s": samples,
                "median_s": float(np.median(samples)), "wall_s": wall_s, "runtime": compiled.runtime,
                "compile_s": compiled.compile_s, "note": compiled.note,
                "cost_s": wall_s - (built - started) - compiled.compile_s}

    def _benchmark(self, header: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        model = str(header.get("model", ""))
        repeats = int(header.get("repeats", 10))
        tier = str(header.get("tier", "device"))
        with tempfile.TemporaryDirectory() as out:
            argv = ["scission", "benchmark", "--tier", tier, "--name", self.node, "--model", model,
                    "--repeats", str(repeats), "--out", out, "--json"]
            if header.get("runtime"):  # the runtime the profile is timed in (auto: chosen by measurement)
                argv += ["--runtime", str(header["runtime"])]
            started = time.perf_counter()
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
            wall_s = time.perf_counter() - started
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                return error_reply(f"scission benchmark failed on {self.node}: {last}"), b""
            files, blobs = [], []
            for path in sorted(Path(out).rglob("*")):
                if path.is_file():
                    data = path.read_bytes()
                    files.append({"path": str(path.relative_to(out)), "nbytes": len(data)})
                    blobs.append(data)
        try:
            summary = json.loads(proc.stdout)
        except ValueError:
            summary = None
        return {"ok": True, "node": self.node, "files": files, "wall_s": wall_s, "summary": summary}, b"".join(blobs)


def _runtime(header: dict[str, Any]) -> str:
    """The runtime a header asks for (default tf-function; auto is the benchmark's choice, not a runtime)."""
    return runtimes.check_runtime(str(header.get("runtime") or runtimes.FALLBACK), allow_auto=False)


def _threads() -> int | None:
    """Intra-op threads the agent was started with (the node's CPU limit), for runtimes that take a count."""
    try:
        return int(os.environ["TF_NUM_INTRAOP_THREADS"])
    except (KeyError, ValueError):
        return None


def _tensor_meta(array: np.ndarray) -> dict[str, Any]:
    return {"shape": [int(d) for d in array.shape], "dtype": array.dtype.name, "nbytes": int(array.nbytes)}


class _Handler(socketserver.BaseRequestHandler):
    agent: Agent

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            try:
                frame = read_frame(sock, self.agent.max_payload_bytes)
            except ConnectionClosed:
                return
            except ProtocolError as exc:
                try:
                    write_frame(sock, error_reply(str(exc)))
                except OSError:
                    return
                if exc.fatal:
                    return
                continue
            except OSError:
                return
            try:
                header, payload = self.agent.handle(frame)
            except Exception as exc:  # the agent keeps serving whatever one request did
                log.exception("request failed")
                header, payload = error_reply(f"{type(exc).__name__}: {exc}"), None
            try:
                if isinstance(payload, np.ndarray):
                    write_tensor(sock, header, payload)
                else:
                    write_frame(sock, header, payload or b"")
            except OSError:
                return


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def serve(node: str, addresses: list[str], port: int = DEFAULT_PORT,
          max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> None:
    """Listen on each address (the node's emulated-network addresses and loopback) until killed."""
    agent = Agent(node, max_payload_bytes)
    handler = type("Handler", (_Handler,), {"agent": agent})
    servers = [_Server((address, port), handler) for address in addresses]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    log.info("agent %s listening on %s port %d (pid %d)", node, ", ".join(addresses), port, os.getpid())
    for t in threads:
        t.join()
