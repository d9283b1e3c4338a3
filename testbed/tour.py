"""`testbed tour`: the main job (`bash scripts/main.sh`), the testbed's point in one command.

A thin orchestration of the existing commands, in their order of use: scission predicts the top
configurations of a small model, the simulator replays them under a bandwidth dip, `testbed run`
measures them on an emulated three-tier topology, `testbed compare` sets predicted, simulated and
measured side by side, and one self-contained HTML page (figures inlined) shows it all.

With a Docker Engine (and root) the profiles are benchmarked in place on the emulated tiers by `testbed
run`, which also predicts from its link probes and measures. Without one, the tour says so in one line and
predicts and simulates from the profiles shipped with the simulation file (benchmarked in the same
emulation), so the page has every column but the measured one. Like `testbed/compare.py`, this module
joins the run and simulation sides; neither of them imports it.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

from scission.files import atomic_write, atomic_write_text
from testbed.errors import TestbedError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DEFAULT_EXPERIMENT", "DEFAULT_SIMULATION", "TourOptions", "TourResult", "engine_problem", "run_tour"]

REPO = Path(__file__).resolve().parents[1]
DEFAULT_EXPERIMENT = REPO / "experiments" / "run-three-tier.yaml"
DEFAULT_SIMULATION = REPO / "experiments" / "sim-three-tier-dip.yaml"
STEADY_REQUESTS = 500  # per seed, for the no-Docker steady-state simulation (compare uses 2,000)
SayFn = Callable[[str, str], None]

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0} td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}
th{background:#f3f3f3} td.l,th.l{text-align:left} figure{margin:1em 0} figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555} .meta{color:#666;font-size:.85em} .note{background:#fff6d5;padding:.5em 1em}
code{background:#f3f3f3;padding:0 .2em}
"""


@dataclass(frozen=True)
class TourOptions:
    """What to run; None keeps the experiment file's figure."""

    out: Path
    experiment: Path = DEFAULT_EXPERIMENT
    simulation: Path = DEFAULT_SIMULATION
    requests: int | None = None
    repeats: int | None = None
    top_k: int | None = None
    native: bool | None = None
    no_docker: bool = False


@dataclass
class TourResult:
    report: Path
    table: pd.DataFrame  # one row per configuration: label, config, predicted_s, simulated_s, dip_*_s[, measured_s]
    measured: bool
    engine_problem: str | None
    stages: list[tuple[str, float]] = field(default_factory=list)  # (stage, seconds)


def engine_problem(no_docker: bool = False) -> str | None:
    """Why the emulator cannot run here (None: it can): root for namespaces and tc, and an answering engine."""
    if no_docker:
        return "--no-docker given"
    if os.geteuid() != 0:
        return "the emulator needs root (network namespaces, veths, tc)"
    from emulator import docker_backend
    from emulator.errors import EmulatorError

    try:
        docker_backend.engine_info()
    except EmulatorError as exc:
        return str(exc)
    return None


class _Clock:
    """Stage lines with the elapsed time since the tour started; stage durations for the report."""

    def __init__(self, say: SayFn):
        self.t0 = time.monotonic()
        self._say = say
        self.stages: list[tuple[str, float]] = []
        self._current: tuple[str, float] | None = None

    def elapsed(self) -> str:
        s = int(time.monotonic() - self.t0)
        return f"{s // 60}:{s % 60:02d}"

    def stage(self, name: str, detail: str) -> None:
        self._close()
        self._current = (name, time.monotonic())
        self._say(f"[{self.elapsed()}] {name}", detail)

    def step(self, name: str, detail: str) -> None:
        self._say(f"[{self.elapsed()}]   {name}", detail)

    def _close(self) -> None:
        if self._current is not None:
            self.stages.append((self._current[0], time.monotonic() - self._current[1]))
            self._current = None

    def done(self) -> None:
        self._close()


class _BuildLines:
    """Node-image build output: every Dockerfile step, and within a long step (pip installing TensorFlow)
    one of its lines every ``every_s``, so a first build shows it is moving without flooding the screen."""

    def __init__(self, clock: _Clock, every_s: float = 20.0):
        self.clock, self.every_s, self.last = clock, every_s, time.monotonic()

    def __call__(self, line: str) -> None:
        now = time.monotonic()
        if line.startswith("Step ") or now - self.last >= self.every_s:
            self.clock.step("image", line.strip()[:140])
            self.last = now


def _experiment(opts: TourOptions):
    from testbed.run.spec import load_experiment

    spec = load_experiment(opts.experiment)
    update = {k: v for k, v in (("requests", opts.requests), ("repeats", opts.repeats), ("top_k", opts.top_k),
                                ("native", opts.native)) if v is not None}
    for key in ("requests", "repeats", "top_k"):
        if key in update and update[key] < 1:
            raise TestbedError(f"--{key.replace('_', '-')} {update[key]} must be at least 1")
    update["models"] = spec.models[:1]  # the tour follows one model through every stage
    return spec.model_copy(update=update)


def _dip_window(sim) -> tuple[float, float] | None:
    """(start_s, end_s) of the first step condition's drop below its starting bandwidth, if any."""
    for c in sim.conditions:
        if c.kind == "step" and c.target == "link" and len(c.points) >= 2:
            start = c.points[0][1]
            low = [t for t, v in c.points if v < start]
            back = [t for t, v in c.points if low and t > low[0] and v >= start]
            if low:
                return low[0], back[0] if back else math.inf
    return None


def _configured_network(topology):
    """scission's network table from the topology's configured links (what the probes would measure)."""
    from testbed.run.predict import network_from_probes

    rows = []
    for link in topology.links:
        for a, b in ((link.a, link.b), (link.b, link.a)):
            rows.append(SimpleNamespace(a=a, b=b, measured_rtt_ms=link.rtt_ms, measured_mbps=link.bandwidth_mbps))
    return network_from_probes(rows)


def _predict_offline(spec, sim) -> pd.DataFrame:
    """No emulator: scission's top k plus natives from the simulation file's shipped profiles, configured links."""
    import pandas as pd

    from emulator.topology import load_topology
    from scission.profile_folder import load_profiles
    from testbed.run.predict import choose_device, predict

    topology = load_topology(spec.topology)
    device = choose_device([n.name for n in topology.nodes if n.tier == topology.tiers[0]], topology.name,
                           spec.device)
    prediction = predict(load_profiles(sim.profiles), _configured_network(topology), spec.models[0], device,
                         topology.tiers, spec.top_k, spec.native)
    return pd.DataFrame([{"label": c.label, "config": c.id, "predicted_s": c.config.latency_s}
                         for c in prediction.chosen])


def _statics(configs: pd.DataFrame):
    from testbed.sim.spec import PolicySpec

    return tuple(PolicySpec(kind="static", configuration=str(r.config), name=str(r.label))
                 for r in configs.itertuples(index=False))


def _simulate_steady(sim, configs: pd.DataFrame) -> pd.Series:
    """No run to compare with: each configuration as a static policy, no conditions, closed loop."""
    from testbed.sim.runner import run_simulation

    steady = sim.model_copy(update={"conditions": (), "policies": _statics(configs), "records": False}
                            ).with_stop(requests=STEADY_REQUESTS)
    summary = run_simulation(steady).summary["policies"]
    return configs["label"].map(lambda label: summary[label]["mean_s"])


def _simulate_dip(sim, configs: pd.DataFrame, out: Path, clock: _Clock):
    """Every configuration as a static policy under the file's conditions, plus the file's adaptive policies."""
    from testbed.sim.output import write_outputs
    from testbed.sim.runner import run_simulation

    keep = tuple(p for p in sim.policies if p.kind not in ("static",) and not p.is_native)
    dip = sim.model_copy(update={"policies": _statics(configs) + keep, "records": True})

    def progress(done: int, total: int, label: str) -> None:
        if done == total or done % max(1, total // 4) == 0:
            clock.step("simulate", f"{done}/{total} runs ({label})")

    result = run_simulation(dip, progress=progress)
    write_outputs(result, out)
    return result


def _dip_columns(result, configs: pd.DataFrame, window) -> pd.DataFrame:
    import pandas as pd

    policies = result.summary["policies"]
    frame = pd.DataFrame({
        "dip_mean_s": configs["label"].map(lambda label: policies[label]["mean_s"]),
        "dip_p95_s": configs["label"].map(lambda label: policies[label]["p95_s"]),
    })
    requests = result.requests_frame()
    if window is not None and requests is not None:
        inside = requests[(requests["arrival_s"] >= window[0]) & (requests["arrival_s"] < window[1])]
        frame["during_dip_mean_s"] = configs["label"].map(inside.groupby("policy")["latency_s"].mean())
    return frame


def _side_by_side_plot(table: pd.DataFrame, path: Path) -> Path:
    import numpy as np

    from scission.plots import figure_size, pyplot, save_figure

    plt = pyplot()
    columns = [(c, name) for c, name in (("predicted_s", "predicted (scission)"), ("simulated_s", "simulated"),
                                         ("during_dip_mean_s", "simulated, during the dip"),
                                         ("measured_s", "measured")) if c in table]
    x = np.arange(len(table))
    w = 0.8 / len(columns)
    fig, ax = plt.subplots(figsize=figure_size("double", 3.4))
    for i, (c, name) in enumerate(columns):
        ax.bar(x + (i - (len(columns) - 1) / 2) * w, table[c], w, label=name)
    # one tier's range per line, so neighbouring ids never overlap at double-column width
    ax.set_xticks(x, [f"{r.label}\n" + r.config.replace(",", "\n") for r in table.itertuples()], fontsize=7)
    ax.set_ylabel("mean latency per request (s)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


# ---------------------------------------------------------------------------------------------- report
def _figure(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _html_table(frame: pd.DataFrame, table_id: str, left: tuple[str, ...] = ()) -> str:
    head = "".join(f'<th class="{"l" if c in left else ""}">{html.escape(str(c))}</th>' for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for c, v in zip(frame.columns, row, strict=True):
            text = "" if v is None or (isinstance(v, float) and math.isnan(v)) else (
                f"{v:.4f}" if isinstance(v, float) else str(v))
            cells.append(f'<td class="{"l" if c in left else ""}">{html.escape(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


_HEADERS = {"label": "label", "config": "configuration", "predicted_s": "predicted (s)",
            "simulated_s": "simulated (s)", "dip_mean_s": "simulated, whole run with the dip: mean (s)",
            "dip_p95_s": "simulated with the dip: p95 (s)", "during_dip_mean_s": "simulated, during the dip: mean (s)",
            "measured_s": "measured (s)", "measured_p95_s": "measured p95 (s)", "requests": "measured requests"}


def _write_report(out: Path, ctx: dict) -> Path:
    import pandas as pd

    sim = ctx["sim"]
    headers = dict(_HEADERS)
    if sim.duration_s is not None:
        headers["dip_mean_s"] = f"simulated, {sim.duration_s:g} s with the dip: mean (s)"
    t = ctx["table"].rename(columns=headers)
    window = ctx["window"]
    dip_text = ", ".join(f"{c.link[0]}>{c.link[1]} " + " → ".join(f"{v:g} Mbit/s at {tm:g} s" for tm, v in c.points)
                         for c in sim.conditions if c.target == "link")
    parts = [
        f"<h1>Scission testbed tour: {html.escape(ctx['model'])} on {html.escape(ctx['topology'])}</h1>",
        f"<p class=meta>generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC} in {ctx['total_s']:.0f} s; "
        f"results folder {html.escape(str(out))}</p>",
    ]
    if ctx["problem"]:
        parts.append(f"<p class=note>Not measured: {html.escape(ctx['problem'])}. Predicted and simulated from the "
                     f"shipped profiles in {html.escape(str(sim.profiles))}; run <code>bash scripts/main.sh</code> as "
                     "root with a Docker Engine for the measured column.</p>")
    steps = [
        "<b>predict</b>: scission's search over device → edge → cloud picks the top configurations; every "
        "single-tier (native) configuration is added " + ("(profiles benchmarked in place on each emulated tier "
                                                        "by <code>testbed run</code>, links as probed)" if ctx["measured"]
                                                        else "(shipped profiles, links as configured)"),
        "<b>simulate</b>: each configuration as a static policy in the SimPy model, one request at a time; "
        f"then under the bandwidth dip ({html.escape(dip_text)})"
        + (f", during the dip = requests sent between {window[0]:g} s and {window[1]:g} s" if window else ""),
    ]
    if ctx["measured"]:
        steps.append("<b>measure</b>: <code>testbed run</code> deploys each configuration on the emulated tiers "
                     "(Docker containers with CPU limits, tc-shaped links) and times real split inference")
        steps.append("<b>compare</b>: <code>testbed compare</code> simulates each measured configuration with the "
                     "run's probes, profiles and node speeds; the predicted column is scission's prediction from the "
                     "profiles benchmarked in place, before any request")
    parts.append("<h2>What was done</h2><ol>" + "".join(f"<li>{s}</li>" for s in steps) + "</ol>")
    parts.append("<h2>Predicted, simulated and measured, side by side</h2>"
                 "<p class=meta>mean latency per request, result back at the device; one row per configuration id "
                 "(as scission prints it)</p>"
                 + _html_table(t, "side-by-side", left=("label", "configuration")))
    for path, caption in ctx["figures"]:
        parts.append(_figure(path, caption))
    parts.append("<h2>Under the bandwidth dip: every policy</h2>"
                 "<p class=meta>static configurations, the oracle (best for the current conditions, free) and the "
                 "adaptive policy (probes the links, re-partitions); mean over seeds "
                 f"{', '.join(map(str, sim.seeds))}</p>" + _html_table(ctx["policies"], "dip-policies", left=("policy",)))
    for path, caption in ctx["dip_figures"]:
        parts.append(_figure(path, caption))
    if ctx["probes"] is not None:
        parts.append("<h2>Links: configured against probed</h2>" + _html_table(ctx["probes"], "probes", left=("a", "b")))
    for path, caption in ctx["run_figures"]:
        parts.append(_figure(path, caption))
    parts.append("<h2>Stages</h2>" + _html_table(pd.DataFrame(ctx["stages"], columns=["stage", "seconds"]), "stages",
                                                left=("stage",)))
    parts.append("<h2>The same, command by command</h2><pre>" + html.escape("\n".join(ctx["commands"])) + "</pre>")
    page = ("<!doctype html><html lang=en><head><meta charset=utf-8><title>testbed tour</title>"
            f"<style>{_STYLE}</style></head><body>" + "\n".join(parts) + "</body></html>\n")
    return atomic_write_text(out / "report.html", page)


# ---------------------------------------------------------------------------------------------- the tour
def run_tour(opts: TourOptions, say: SayFn) -> TourResult:
    """Every stage in order; ``say(stage, detail)`` gets one line per stage and per long stage's step."""
    import pandas as pd  # with the simulator and the run, only when a tour starts

    from testbed.sim.spec import NodeOverride, load_simulation

    clock = _Clock(say)
    out = Path(opts.out)
    spec = _experiment(opts)
    sim = load_simulation(opts.simulation)
    model = spec.models[0]
    if sim.model != model:
        raise TestbedError(f"{opts.simulation}: model {sim.model} is not the experiment's {model}")
    sim = sim.model_copy(update={"topology": spec.topology})
    window = _dip_window(sim)
    problem = engine_problem(opts.no_docker)
    clock.stage("engine", "Docker Engine answers; measuring on the emulator" if problem is None else
                f"no Docker Engine or no root ({problem}): predicting and simulating only, "
                "the report leaves out the measured column")
    out.mkdir(parents=True, exist_ok=True)
    commands: list[str] = []
    probes = None
    run_figures: list[tuple[Path, str]] = []
    if problem is None:
        from emulator.image import build_node_image
        from testbed.compare import compare_run, write_compare
        from testbed.run.folder import read_replay
        from testbed.run.runner import run_experiment
        from testbed.run.speeds import speed_factors

        clock.stage("node image", "building or reusing the node image (first time: about 3 min)")
        image = build_node_image(on_line=_BuildLines(clock))
        run_dir = out / "run"
        clock.stage("run", f"testbed run {spec.source}: up, benchmark {model} on every node, probe, predict, "
                    f"measure {spec.requests} requests per configuration, down")
        run_experiment(spec, run_dir, clock.step, image=image)
        commands.append(f"testbed run {spec.source} --out {run_dir}")
        replay = read_replay(run_dir / model)
        clock.stage("compare", f"testbed compare {run_dir / model}")
        compared = compare_run(run_dir / model, seeds=sim.seeds)
        write_compare(compared, out / "compare")
        commands.append(f"testbed compare {run_dir / model} --out {out / 'compare'}")
        labels = replay.configs.set_index("config")["label"]
        configs = pd.DataFrame({"label": compared["config"].map(labels), "config": compared["config"]})
        table = configs.assign(predicted_s=compared["predicted_s"], simulated_s=compared["simulated_s"])
        measured = compared[["measured_s", "measured_p95_s", "requests"]]
        factors = speed_factors(replay.speeds, "mean") if replay.speeds is not None else {}
        sim = sim.model_copy(update={
            "profiles": replay.profiles_path,
            "nodes": {**sim.nodes, **{n: NodeOverride(speed=1 / f) for n, f in factors.items()}}})
        probes = replay.probes[["a", "b", "configured_mbps", "measured_mbps", "configured_rtt_ms", "measured_rtt_ms"]]
        run_figures = [(p, str(p.relative_to(out))) for p in sorted((run_dir / "plots").glob("*.png"))]
        run_figures.insert(0, (out / "compare" / "compare.png", "testbed compare: measured, simulated and predicted"))
    else:
        clock.stage("predict", f"scission's top {spec.top_k} of {model} from {sim.profiles}, links as configured")
        table = _predict_offline(spec, sim)
        commands.append(f"scission predict (testbed.run.predict) on {sim.profiles}")
        clock.stage("simulate", f"{len(table)} configurations, no dip, {STEADY_REQUESTS} requests x "
                    f"{len(sim.seeds)} seeds")
        table["simulated_s"] = _simulate_steady(sim, table)
        measured = None
    clock.stage("simulate dip", f"testbed simulate {opts.simulation}: {len(table)} configurations "
                "+ oracle + adaptive under the bandwidth dip")
    dip = _simulate_dip(sim, table, out / "simulate", clock)
    commands.append(f"testbed simulate {opts.simulation} --out {out / 'simulate'}")
    table = pd.concat([table.reset_index(drop=True), _dip_columns(dip, table, window).reset_index(drop=True)], axis=1)
    if measured is not None:
        table = pd.concat([table, measured.reset_index(drop=True)], axis=1)
    clock.stage("report", "side-by-side table, figures, one HTML page")
    atomic_write(out / "tour.csv", lambda tmp: table.to_csv(tmp, index=False))
    figures = [(_side_by_side_plot(table, out / "side-by-side.png"), "mean latency per configuration")]
    policies = pd.DataFrame([{"policy": name, "mean_s": e["mean_s"], "p95_s": e["p95_s"],
                              "re-partitions": e["repartitions"], "stable": "yes" if e["stable"] else "no"}
                             for name, e in dip.summary["policies"].items()])
    dip_figures = [(out / "simulate" / "latency_over_time.png", "latency over time under the dip (first seed)"),
                   (out / "simulate" / "latency_cdf.png", "latency CDF per policy, all seeds")]
    clock.done()
    total_s = time.monotonic() - clock.t0
    report = _write_report(out, {
        "table": table, "sim": sim, "window": window, "model": model, "topology": Path(spec.topology).stem,
        "problem": problem, "measured": problem is None, "figures": figures, "policies": policies,
        "dip_figures": dip_figures, "probes": probes, "run_figures": [f for f in run_figures if f[0].exists()],
        "stages": [(s, round(d, 1)) for s, d in clock.stages], "commands": commands, "total_s": total_s})
    atomic_write_text(out / "tour.json", json.dumps({
        "report": str(report), "measured": problem is None, "engine_problem": problem,
        "stages_s": dict(clock.stages), "total_s": total_s,
        "rows": json.loads(table.to_json(orient="records"))}, indent=2) + "\n")
    return TourResult(report, table, problem is None, problem, clock.stages)
