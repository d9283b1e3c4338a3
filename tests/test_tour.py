"""`testbed tour` (the main job, scripts/main.sh): one command from prediction to a self-contained report.

The end-to-end test runs the tour against the real Docker Engine, kept short (one configuration, two
requests, one benchmark repeat); under CI=true it fails, never skips, when no engine answers. The no-Docker
path is run with DOCKER_HOST pointing at a socket that does not exist.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import REPO, require_docker

from emulator.topology import load_topology


class _Tables(HTMLParser):
    """Every <table id=...> of a page as rows of cell texts (header first), and every src/href value."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.links: list[str] = []
        self._table = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.links += [v for k, v in attrs.items() if k in ("src", "href") and v is not None]
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id", ""), [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._table[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _tour(tmp_path: Path, *args: str, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """`testbed tour` from this checkout, as main.sh runs it."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "testbed.cli", "tour", "--out", str(tmp_path / "tour"), *args],
                          capture_output=True, text=True, cwd=REPO, env=environment, timeout=timeout)


def _side_by_side(report: Path) -> tuple[dict[str, dict[str, str]], list[str]]:
    """The report's side-by-side table keyed by configuration id, and every src/href of the page."""
    page = _Tables()
    page.feed(report.read_text())
    header, *rows = page.tables["side-by-side"]
    return {row[header.index("configuration")]: dict(zip(header, row, strict=True)) for row in rows}, page.links


def _number(text: str) -> float:
    value = float(text)
    assert math.isfinite(value) and value > 0, text
    return value


def _self_contained(links: list[str]) -> None:
    assert links, "the report has figures"
    assert all(link.startswith("data:image/png;base64,") for link in links), [x[:40] for x in links]


def test_tour_without_an_engine_says_so_in_one_line_and_reports_without_the_measured_column(tmp_path):
    result = _tour(tmp_path, env={"DOCKER_HOST": f"unix://{tmp_path}/no-such-docker.sock"}, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    output = (result.stdout + result.stderr).splitlines()
    about_docker = [line for line in output if "docker" in line.lower()]
    assert len(about_docker) == 1, about_docker
    assert "measured column" in about_docker[0]
    assert "Traceback" not in result.stderr
    report = Path(output[-1].removeprefix("report: "))
    assert output[-1].startswith("report: ") and report == tmp_path / "tour" / "report.html" and report.is_file()
    rows, links = _side_by_side(report)
    _self_contained(links)
    assert len(rows) >= 2  # top configurations plus the native ones
    for config, row in rows.items():
        assert not any(h.startswith("measured") for h in row), row
        _number(row["predicted (s)"]), _number(row["simulated (s)"])
        _number(row["simulated, during the dip: mean (s)"])
        assert re.fullmatch(r"[a-z]+:\d+-\d+(,[a-z]+:\d+-\d+)*", config), config
    # the dip costs the configurations that send the 600 kB input over the device's uplink
    edge_only = next(row for config, row in rows.items() if re.fullmatch(r"edge:0-\d+", config))
    assert _number(edge_only["simulated, during the dip: mean (s)"]) > _number(edge_only["simulated (s)"])
    assert "Not measured" in report.read_text()


def test_tour_without_root_says_so_in_one_line_and_still_reports(tmp_path):
    """As a user without root sees it: the emulator needs namespaces and tc, the rest runs."""
    out = tmp_path / "tour"
    code = ("import os, sys; os.geteuid = lambda: 1000; from testbed.cli import main; "
            f"sys.exit(main(['tour', '--out', {str(out)!r}]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    about = [line for line in (result.stdout + result.stderr).splitlines()
             if "root" in line.lower() and not line.startswith("report: ")]
    assert len(about) == 1 and "needs root" in about[0] and "measured column" in about[0], about
    rows, _ = _side_by_side(out / "report.html")
    assert rows and not any(h.startswith("measured") for row in rows.values() for h in row)


def test_tour_refuses_bad_options_in_one_line(tmp_path):
    result = _tour(tmp_path, "--requests", "0", "--no-docker", timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "--requests 0 must be at least 1" in result.stderr


def test_three_tier_topology_leaves_room_for_its_delay_lines():
    """The node CPU limits stay under the 2-core host with half a core for the delay lines and the driver."""
    topology = load_topology(REPO / "topologies" / "three-tier.yaml")
    assert topology.tiers == ("device", "edge", "cloud")
    assert [(lk.a, lk.b) for lk in topology.links] == [("device", "edge"), ("edge", "cloud")]  # a chain
    assert sum(n.cpus for n in topology.nodes) <= 1.5


def test_a_long_image_build_shows_every_step_and_a_line_now_and_then():
    from testbed.tour import _BuildLines, _Clock

    shown = []
    lines = _BuildLines(_Clock(lambda stage, detail: shown.append(detail)), every_s=3600)
    for line in ["Step 8/18 : RUN pip install tensorflow", *[f"Collecting package-{i}" for i in range(50)],
                 "Step 9/18 : COPY requirements.txt"]:
        lines(line)
    assert shown == ["Step 8/18 : RUN pip install tensorflow", "Step 9/18 : COPY requirements.txt"]
    lines.last -= 3600  # an hour into step 9: its next line is shown
    lines("Downloading tensorflow_cpu-2.21.0.whl")
    assert shown[-1] == "Downloading tensorflow_cpu-2.21.0.whl"


def test_main_script_runs_the_tour_after_setup_and_docker():
    script = (REPO / "scripts" / "main.sh").read_text()
    assert subprocess.run(["bash", "-n", str(REPO / "scripts" / "main.sh")]).returncode == 0
    assert script.index("bash scripts/setup.sh") < script.index("bash scripts/ensure_docker.sh") < script.index(".venv/bin/testbed tour")


@pytest.mark.docker
@pytest.mark.tf
@pytest.mark.slow
def test_tour_end_to_end_on_the_docker_engine(tmp_path):
    require_docker()
    result = _tour(tmp_path, "--top-k", "1", "--no-native", "--requests", "2", "--repeats", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert not [line for line in result.stdout.splitlines() if "no docker" in line.lower()]
    report = tmp_path / "tour" / "report.html"
    assert result.stdout.splitlines()[-1] == f"report: {report}"
    rows, links = _side_by_side(report)
    _self_contained(links)
    assert len(rows) == 1  # one configuration: scission's best, as measured, simulated and predicted
    (config, row), = rows.items()
    assert row["label"] == "top-1"
    for column in ("predicted (s)", "simulated (s)", "simulated, during the dip: mean (s)", "measured (s)"):
        _number(row[column])
    assert row["measured requests"] == "2"
    page = _Tables()
    page.feed(report.read_text())
    assert {r[0] for r in page.tables["probes"][1:]} == {"device", "edge", "cloud"}
    from emulator import lifecycle

    assert "three-tier" not in lifecycle.running_names()
