"""Price re-benchmarking for the legacy machines with the overhead `scission benchmark` measured here.

The legacy profiles have no benchmark wall time. A benchmark costs about `overhead x R` whole-model
inferences plus the build (benchmarks/results/benchmark_fidelity.json, measured on this host), so on a
machine whose model latency is T it costs `overhead x R x T + build x T / T_here`. This writes the legacy
profiles, in this project's format, with that figure as `run["wall_s"]`, into experiments/profiles-priced/,
for the benchmarking-period sweep. Run: .venv/bin/python benchmarks/priced_profiles.py [--compiled FOLDER]

With ``--compiled FOLDER`` (the output of ``scission benchmark`` in a compiled runtime, format 2) it also
prices what a deployment that serves compiled pays to switch (issue 13): the folder's measured compile time
per Keras layer (Σ ``blocks_compile_s``, else ``compile_s``, over its layers), times each block's layers,
scaled to each machine like the build time (the model's latency there / its eager whole-model median here),
as ``run["blocks_compile_s"]`` and ``run["compile_s"]``, with ``run["runtime"]`` the measured one. Block times
stay the legacy measurements; a recalibration keeps the estimate of ``testbed.policies.costs`` (2 passes x
the model's latency), since no legacy machine was recalibrated.

With ``--side-by-side JSON`` (benchmarks/results/runtimes_side_by_side.json) it prices the models measured
there instead: the whole-model compile time of the runtime ``auto`` chose, in eager passes of the same run
(compile_s / eager median, so the host's load cancels), times the model's latency on each machine, as
``run["compile_s"]`` (no per-block list: a switch is charged its share of blocks). Models the run did not
measure keep no compile figures (eager: switches free).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scission.profile_folder import load_profiles  # noqa: E402
from scission.profiles import write_model  # noqa: E402

REPEATS = 10


def compile_rate(folder: Path) -> tuple[float, dict]:
    """Seconds of compile per Keras layer in the measured profile, and what it was read from."""
    profiles = load_profiles(folder)
    for profile in profiles:
        for name, model in profile.models.items():
            run = model.run
            per_block = run.get("blocks_compile_s")
            total = sum(per_block) if per_block else run.get("compile_s")
            if not total or run.get("runtime", "eager") == "eager":
                continue
            layers = model.blocks[-1].last_layer + 1
            shown = folder.resolve()
            shown = shown.relative_to(REPO) if shown.is_relative_to(REPO) else shown
            return total / layers, {"profile": str(shown), "model": name, "resource": profile.resource.label,
                                    "runtime": run.get("runtime"), "layers": layers,
                                    "compile_s": run.get("compile_s"),
                                    "blocks_compile_s_sum": sum(per_block) if per_block else None,
                                    "whole_model_median_s": run.get("whole_model_median_s"),
                                    "call_overhead_s": run.get("call_overhead_s")}
    raise SystemExit(f"{folder}: no profile with a compiled runtime and compile times")


def side_by_side_passes(path: Path) -> dict[str, tuple[str, float, dict]]:
    """Per model of the side-by-side run: auto's runtime, its compile time in eager passes, and the source."""
    data = json.loads(path.read_text())
    shown = path.resolve()
    shown = shown.relative_to(REPO) if shown.is_relative_to(REPO) else shown
    out = {}
    for m in data["models"]:
        runtime = m["auto"]["runtime"]
        compile_s = m["auto"]["table"][runtime]["compile_s"]
        eager_s = m["side_by_side"]["eager"]["median_s"]
        out[m["model"]] = (runtime, compile_s / eager_s, {
            "results": str(shown), "date": data.get("date"), "model": m["model"], "runtime": runtime,
            "compile_s": compile_s, "eager_median_s": eager_s, "compile_eager_passes": compile_s / eager_s})
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compiled", type=Path, help="a `scission benchmark` folder timed in a compiled runtime")
    parser.add_argument("--side-by-side", type=Path, help="benchmarks/runtimes_side_by_side.py's JSON results")
    parser.add_argument("--out", type=Path, default=REPO / "experiments" / "profiles-priced")
    args = parser.parse_args(argv)
    rate = source = None
    if args.compiled is not None:
        rate, source = compile_rate(args.compiled)
    passes = side_by_side_passes(args.side_by_side) if args.side_by_side is not None else {}
    measured = {m["model"]: m for m in json.loads(
        (REPO / "benchmarks" / "results" / "benchmark_fidelity.json").read_text())["models"]}
    out = args.out
    shutil.rmtree(out, ignore_errors=True)
    for profile in load_profiles(REPO / "tests" / "data" / "legacy"):
        for name, model in profile.models.items():
            m = measured.get(name)
            if m is None:
                continue
            latency_s = sum(model.latencies_s)
            here_s = m["whole_median_ms"] / 1000
            wall_s = m["overhead"] * REPEATS * latency_s + m["build_s"] * latency_s / here_s
            run = {"wall_s": wall_s, "repeats": REPEATS, "priced_from": "benchmarks/results/benchmark_fidelity.json",
                   "overhead_ratio": m["overhead"]}
            if rate is not None:
                scale = latency_s / here_s  # this machine's seconds per second here, as for the build
                per_block = [rate * (b.last_layer - b.first_layer + 1) * scale for b in model.blocks]
                run.update({"runtime": source["runtime"], "blocks_compile_s": per_block, "compile_s": sum(per_block),
                            "compile_priced_from": source})
            if name in passes:
                runtime, compile_passes, origin = passes[name]
                run.update({"runtime": runtime, "compile_s": compile_passes * latency_s,
                            "compile_priced_from": origin})
            write_model(out, profile.resource, replace(model, run=run),
                        {"source": "legacy Scission measurements, benchmark cost priced on this host"})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
