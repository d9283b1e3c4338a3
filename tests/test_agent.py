"""The node agent on loopback: split inference across two agents, wire-format checks, errors keep it serving."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import REPO

from testbed.agent.call import call
from testbed.agent.protocol import read_frame, write_frame, write_tensor


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(16, activation="relu")(x)
    outputs = keras.layers.Dense(5)(x)
    model = keras.Model(inputs, outputs)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def agents():
    ports = {"device": _free_port(), "relay": _free_port(), "edge": _free_port()}
    procs = [subprocess.Popen([sys.executable, "-m", "testbed.agent", "--node", node, "--listen", "127.0.0.1",
                               "--port", str(port)], cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for node, port in ports.items()]
    deadline = time.time() + 60
    for port in ports.values():
        while True:
            try:
                call("ping", {}, port, timeout_s=2)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
    yield ports
    for p in procs:
        p.terminate()
        p.wait(timeout=10)


@pytest.mark.tf
def test_split_inference_across_two_agents_matches_the_whole_model(agents, tiny_model):
    import keras

    from scission.benchmark.graph import analyse

    model = keras.saving.load_model(tiny_model)
    blocks = analyse(model).blocks
    assert len(blocks) >= 3
    cut = 1
    edge = call("load", {"model": "tiny", "model_file": str(tiny_model), "first_block": cut + 1,
                         "last_block": len(blocks) - 1}, agents["edge"]).header
    assert edge["ok"], edge
    device = call("load", {"model": "tiny", "model_file": str(tiny_model), "first_block": 0, "last_block": cut,
                           "next": f"127.0.0.1:{agents['edge']}"}, agents["device"]).header
    assert device["ok"], device
    x = np.random.default_rng(0).standard_normal((1, 8, 8, 3)).astype("float32")
    with socket.create_connection(("127.0.0.1", agents["device"]), timeout=30) as sock:
        write_tensor(sock, {"op": "infer"}, x)
        reply = read_frame(sock)
    assert reply.header["ok"], reply.header
    assert [h["node"] for h in reply.header["hops"]] == ["device", "edge"]
    assert all(h["compute_s"] >= 0 for h in reply.header["hops"])
    assert reply.header["hops"][1]["transfer_in_s"] > 0
    expected = model(x, training=False).numpy()
    np.testing.assert_allclose(reply.tensor(), expected, rtol=1e-5, atol=1e-5)

    drive = call("drive", {"requests": 3, "timeout_s": 10}, agents["device"]).header
    assert drive["ok"] and len(drive["records"]) == 3
    assert all(r["ok"] and r["latency_s"] > 0 and len(r["hops"]) == 2 for r in drive["records"])


@pytest.mark.tf
def test_a_relay_forwards_an_intermediate_tensor_unchanged(agents, tiny_model):
    import keras

    from scission.benchmark.graph import analyse

    model = keras.saving.load_model(tiny_model)
    last = len(analyse(model).blocks) - 1
    cut, tiny = 1, {"model": "tiny", "model_file": str(tiny_model)}
    assert call("load", {**tiny, "first_block": cut + 1, "last_block": last}, agents["edge"]).header["ok"]
    relay = call("load", {**tiny, "first_block": cut + 1, "last_block": cut,
                          "next": f"127.0.0.1:{agents['edge']}"}, agents["relay"]).header
    assert relay["ok"], relay
    assert call("load", {**tiny, "first_block": 0, "last_block": cut,
                         "next": f"127.0.0.1:{agents['relay']}"}, agents["device"]).header["ok"]
    x = np.random.default_rng(1).standard_normal((1, 8, 8, 3)).astype("float32")
    with socket.create_connection(("127.0.0.1", agents["device"]), timeout=30) as sock:
        write_tensor(sock, {"op": "infer"}, x)
        reply = read_frame(sock)
    assert reply.header["ok"], reply.header
    hops = reply.header["hops"]
    assert [h["node"] for h in hops] == ["device", "relay", "edge"]
    assert (hops[1]["first_block"], hops[1]["last_block"]) == (cut + 1, cut) and hops[1]["compute_s"] < 0.01
    assert hops[1]["bytes_in"] == hops[2]["bytes_in"]  # the relay sends on what it received
    np.testing.assert_allclose(reply.tensor(), model(x, training=False).numpy(), rtol=1e-5, atol=1e-5)
    bad = call("load", {**tiny, "first_block": 2, "last_block": 0}, agents["relay"]).header
    assert bad["ok"] is False and "block range 2-0 is outside" in bad["error"]


@pytest.mark.tf
def test_load_compiles_the_range_once_and_serves_what_eager_serves(agents, tiny_model):
    """tf-function (the default) and eager on request: both say what they used and what compiling cost, and
    answer the same input alike; loading a range again finds it compiled."""
    tiny = {"model": "tiny", "model_file": str(tiny_model), "first_block": 0, "last_block": 1}
    x = np.random.default_rng(2).standard_normal((1, 8, 8, 3)).astype("float32")
    outputs = {}
    for runtime in ("tf-function", "eager", None):
        fields = tiny if runtime is None else {**tiny, "runtime": runtime}
        header = call("load", fields, agents["device"]).header
        assert header["ok"], header
        assert header["runtime"] == (runtime or "tf-function") and header["note"] is None
        assert header["compile_s"] >= 0 and header["compile_s"] <= header["load_s"]
        with socket.create_connection(("127.0.0.1", agents["device"]), timeout=30) as sock:
            write_tensor(sock, {"op": "infer"}, x)
            reply = read_frame(sock)
        assert reply.header["ok"], reply.header
        outputs[runtime] = reply.tensor()
    again = call("load", {**tiny, "runtime": "tf-function"}, agents["device"]).header
    assert again["cached"] is True and again["compile_s"] == 0.0  # a range served before is not recompiled
    np.testing.assert_allclose(outputs["tf-function"], outputs["eager"], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(outputs[None], outputs["tf-function"])


@pytest.mark.tf
def test_an_unknown_runtime_gets_an_error_reply_and_the_stage_stays(agents, tiny_model):
    tiny = {"model": "tiny", "model_file": str(tiny_model), "first_block": 0, "last_block": 0}
    assert call("load", tiny, agents["device"]).header["ok"]
    bad = call("load", {**tiny, "last_block": 1, "runtime": "tensorrt"}, agents["device"]).header
    assert bad["ok"] is False and "unknown runtime 'tensorrt'" in bad["error"], bad
    assert call("load", {**tiny, "runtime": "auto"}, agents["device"]).header["ok"] is False
    speed = call("speed", {"model": "tiny", "model_file": str(tiny_model), "runtime": "tensorrt"},
                 agents["device"]).header
    assert speed["ok"] is False and "unknown runtime" in speed["error"]
    ping = call("ping", {}, agents["device"]).header
    assert ping["ok"] and ping["stage"]["last_block"] == 0  # still serving the stage it had


@pytest.mark.tf
def test_speed_probe_times_whole_passes_on_the_serving_thread(agents, tiny_model):
    reply = call("speed", {"model": "tiny", "model_file": str(tiny_model), "passes": 3}, agents["edge"]).header
    assert reply["ok"], reply
    assert reply["runtime"] == "tf-function" and reply["compile_s"] >= 0  # the whole model as one callable
    eager = call("speed", {"model": "tiny", "model_file": str(tiny_model), "passes": 2, "runtime": "eager"},
                 agents["edge"]).header
    assert eager["ok"] and eager["runtime"] == "eager" and len(eager["pass_s"]) == 2
    assert len(reply["pass_s"]) == 3 and all(t > 0 for t in reply["pass_s"])
    assert min(reply["pass_s"]) <= reply["median_s"] <= max(reply["pass_s"])
    bad = call("speed", {"model": "tiny", "model_file": str(tiny_model), "passes": 0}, agents["edge"]).header
    assert bad["ok"] is False and "passes 0 must be 1..100" in bad["error"]
    assert call("ping", {}, agents["edge"]).header["ok"]


def _raw(port: int, data: bytes) -> dict:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        return read_frame(sock).header


def _frame(header: dict, payload: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack(">I", len(raw)) + raw + payload


@pytest.mark.tf
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (struct.pack(">I", 5) + b"nope!", "not UTF-8 JSON"),
        (struct.pack(">I", 10_000_000), "outside 1.."),
        (_frame({"op": "infer", "shape": [1, 8, 8, 3], "dtype": "object", "nbytes": 0}), "dtype 'object' is not allowed"),
        (_frame({"op": "infer", "shape": [1, 8], "dtype": "float32", "nbytes": 999}, b"x" * 999), "does not match shape"),
        (_frame({"op": "infer", "shape": [1, 1], "dtype": "float32", "nbytes": 1 << 30}), "exceeds the cap"),
        (_frame({"op": "infer", "shape": [1, 4, 4, 3], "dtype": "float32", "nbytes": 192}, bytes(192)),
         "does not match this stage's input"),
        (_frame({"op": "teleport"}), "unknown op"),
    ],
)
def test_bad_messages_get_an_error_reply_and_the_agent_keeps_serving(agents, tiny_model, data, message):
    header = call("load", {"model": "tiny", "model_file": str(tiny_model), "first_block": 0, "last_block": 0},
                  agents["device"]).header
    assert header["ok"]
    reply = _raw(agents["device"], data)
    assert reply["ok"] is False and message in reply["error"], reply
    assert call("ping", {}, agents["device"]).header["ok"]


def test_write_frame_round_trip_without_tensor():
    a, b = socket.socketpair()
    with a, b:
        write_frame(a, {"op": "ping", "x": 1})
        frame = read_frame(b)
    assert frame.header == {"op": "ping", "x": 1, "nbytes": 0}
