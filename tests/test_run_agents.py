"""The typed agent client on a fake `Emulation.exec`: the whole stdout is the reply; errors are AgentError."""

from __future__ import annotations

import base64
import json
import shlex

import pytest
from run_fakes import topology_of, write_topology

from emulator.errors import NotRunning
from testbed.agent.call import main as call_main
from testbed.agent.server import DEFAULT_PORT
from testbed.errors import AgentError
from testbed.run.agents import CALL_LOG, AgentClient


class Exec:
    def __init__(self, replies):
        self.replies = list(replies)
        self.argv = []

    def exec(self, node, argv, *, detach=False):
        self.argv.append((node, list(argv), detach))
        reply = self.replies.pop(0) if not detach else (0, "")
        if isinstance(reply, Exception):
            raise reply
        return reply

    def address(self, node, peer):
        return f"10.1.{node}.{peer}"


@pytest.fixture
def topology(tmp_path):
    return topology_of(write_topology(tmp_path))


def test_a_call_runs_the_in_container_client_with_stderr_to_a_log(topology):
    emu = Exec([(0, json.dumps({"ok": True, "records": [
        {"request": 0, "ok": True, "latency_s": 0.2, "hops": [{"node": "device", "first_block": 0, "last_block": 1,
                                                               "compute_s": 0.1, "transfer_in_s": None}]}]}))])
    records = AgentClient(emu, topology).drive("device", 1, 5.0)
    assert records[0].ok and records[0].latency_s == 0.2 and records[0].hops[0].node == "device"
    assert records[0].compute_s == 0.1
    node, argv, _ = emu.argv[0]
    assert argv[:2] == ["sh", "-c"] and argv[2].endswith(f"2>>{CALL_LOG}")
    inner = shlex.split(argv[2])
    assert inner[1:5] == ["python", "-m", "testbed.agent.call", "drive"] and str(DEFAULT_PORT) in inner


def test_load_names_the_next_hop_on_its_link(topology):
    emu = Exec([(0, '{"ok": true}')])
    AgentClient(emu, topology).load("device", "m", 0, 3, 0, "edge")
    fields = json.loads(shlex.split(emu.argv[0][1][2])[5])
    assert fields["next"] == f"10.1.edge.device:{DEFAULT_PORT}" and fields["last_block"] == 3


@pytest.mark.parametrize(("reply", "message"), [
    ((1, '{"ok": false, "error": "no stage loaded"}'), "drive on device: no stage loaded"),
    ((1, "Traceback ...\n"), "gave no reply to drive"),
    ((0, '{"ok": true}\n{"ok": true}'), "gave no reply to drive"),  # one document, not a last line
    ((0, "[1]"), "not a JSON object"),
    (NotRunning("node device of fake is exited; start it first"), "drive on device: node device of fake is exited"),
])
def test_no_usable_reply_is_an_agent_error(topology, reply, message):
    with pytest.raises(AgentError, match=message):
        AgentClient(Exec([reply]), topology).drive("device", 1, 5.0)


def test_benchmark_files_and_the_chained_pass_come_back_typed(topology):
    reply = {"ok": True, "wall_s": 3.0, "files": [{"path": "device/x.parquet", "b64": base64.b64encode(b"abc").decode()}],
             "summary": [{"model": "m", "chained_pass_median_s": 0.25}]}
    got = AgentClient(Exec([(0, json.dumps(reply))]), topology).benchmark("device", "m", 2, "device")
    assert got.files == {"device/x.parquet": b"abc"} and got.chained_pass_s == 0.25 and got.wall_s == 3.0


def test_start_detaches_one_agent_per_node_then_pings_each(topology):
    emu = Exec([(0, '{"ok": true}')] * 3)
    AgentClient(emu, topology).start()
    detached = [a for a in emu.argv if a[2]]
    assert [a[0] for a in detached] == ["device", "edge", "cloud"]
    assert "--listen 127.0.0.1 --listen 10.1.device.edge" in detached[0][1][2]


def test_the_in_container_client_prints_exactly_one_json_document(capsys):
    code = call_main(["ping", "{}", "--port", "1", "--timeout", "1"])  # nothing listens on port 1
    out = capsys.readouterr().out
    assert code == 1 and json.loads(out)["ok"] is False and out.count("\n") == 1
