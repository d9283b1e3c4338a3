"""The compiled runtimes side by side, and whether ``auto`` picks well (issue 13, point 1).

For mobilenetv2, resnet50 and vgg16 (weights=None, ``keras.utils.set_random_seed(0)``, the benchmark's
synthetic input) it

1. runs ``choose_runtime`` on the whole model as ``scission benchmark --runtime auto`` does (its own
   3 interleaved passes per candidate), and
2. measures all four runtimes (eager included, for the record) side by side in one run: warm-up passes,
   then ``--passes`` calls each, round robin with the starting runtime rotating so host noise falls
   on all alike.

Target: the auto choice's median in (2) within 1.1x of the fastest median in (2). When missed, the
chosen and the fastest are measured again, head to head with ``--recheck-passes`` calls each, to tell
host noise (the recheck meets the target) from a real choice problem (it does not).

It also records each converted runtime's output error against eager, on the whole model and on the
first half of its blocks (random-weight softmax outputs are near uniform, so the inner range is the
stricter check of numerics), to back the tolerance (``compiled.TOLERANCE``).
Writes ``benchmarks/results/runtimes_side_by_side.{json,md}``.

    python benchmarks/runtimes_side_by_side.py [--passes 15] [--model mobilenetv2 ...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from scission import runtimes  # noqa: E402
from scission.benchmark import host, models  # noqa: E402
from scission.benchmark.compiled import TOLERANCE, choose_runtime, compile_range, default_threads  # noqa: E402
from scission.benchmark.graph import analyse, graph_model  # noqa: E402
from scission.benchmark.inputs import synthetic_input  # noqa: E402
from scission.files import atomic_write_text  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = ("mobilenetv2", "resnet50", "vgg16")
TARGET_RATIO = 1.1
WARMUP = 2


def _round_robin(fns: dict, x: np.ndarray, passes: int) -> dict[str, list[float]]:
    """``passes`` timed calls of each callable, interleaved, the first one rotating every pass."""
    order = list(fns)
    samples: dict[str, list[float]] = {name: [] for name in order}
    for p in range(passes):
        k = p % len(order)
        for name in order[k:] + order[:k]:
            started = time.perf_counter()
            fns[name](x)
            samples[name].append(time.perf_counter() - started)
    return samples


def _relative_error(out: np.ndarray, reference: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(out, np.float64) - reference)) / np.max(np.abs(reference)))


def measure_model(name: str, passes: int, recheck_passes: int, threads: int) -> dict:
    import keras

    keras.utils.set_random_seed(0)
    loaded = models.load(models.ModelSource(name))
    model = loaded.model
    graph, blocks = graph_model(model), analyse(model).blocks
    x = synthetic_input(model.input_shape, "float32", loaded.preprocess)
    print(f"{name}: {len(blocks)} blocks; choosing", flush=True)

    choice = choose_runtime(blocks, x, graph, threads=threads)
    auto = {"runtime": choice.runtime, "select_s": choice.select_s, "reference_s": choice.reference_s,
            "compile_s": choice.compiled.compile_s, "table": choice.table}
    del choice

    print(f"{name}: auto chose {auto['runtime']}; compiling all four for the side-by-side run", flush=True)
    compiled = {rt: compile_range(blocks, rt, x, graph, threads) for rt in runtimes.RUNTIMES}
    reference = np.asarray(compiled[runtimes.EAGER](x), np.float64)
    _round_robin(compiled, x, WARMUP)
    samples = _round_robin(compiled, x, passes)
    rows = {}
    for rt, fn in compiled.items():
        rows[rt] = {"used": fn.runtime, "note": fn.note, "compile_s": fn.compile_s, "threads": fn.threads,
                    "median_s": float(np.median(samples[rt])), "samples_s": samples[rt],
                    "relative_error": _relative_error(fn(x), reference)}
    medians = {rt: row["median_s"] for rt, row in rows.items()}
    fastest = min(medians, key=medians.get)
    ratio = medians[auto["runtime"]] / medians[fastest]
    result = {"model": name, "blocks": len(blocks), "auto": auto, "side_by_side": rows, "fastest": fastest,
              "auto_over_fastest": ratio, "target_met": ratio <= TARGET_RATIO}
    if ratio > TARGET_RATIO:
        print(f"{name}: auto {auto['runtime']} is {ratio:.2f}x the fastest ({fastest}); re-measuring the two",
              flush=True)
        pair = {rt: compiled[rt] for rt in dict.fromkeys((auto["runtime"], fastest))}
        again = _round_robin(pair, x, recheck_passes)
        again_medians = {rt: float(np.median(s)) for rt, s in again.items()}
        recheck_ratio = again_medians[auto["runtime"]] / min(again_medians.values())
        result["recheck"] = {"passes": recheck_passes, "medians_s": again_medians, "samples_s": again,
                             "auto_over_fastest": recheck_ratio,
                             "verdict": "host noise" if recheck_ratio <= TARGET_RATIO else "choice problem"}
    del compiled

    half = blocks[: max(1, len(blocks) // 2)]
    half_ref = np.asarray(compile_range(half, runtimes.EAGER, x, graph)(x), np.float64)
    result["first_half_blocks"] = f"{half[0].index}-{half[-1].index}"
    result["first_half_relative_error"] = {}
    for rt in (runtimes.TF_FUNCTION, runtimes.ONNXRUNTIME, runtimes.LITERT):
        fn = compile_range(half, rt, x, graph, threads)
        result["first_half_relative_error"][rt] = _relative_error(fn(x), half_ref) if fn.runtime == rt else None
    return result


def _markdown(doc: dict) -> str:
    facts = doc["host"]
    lines = [
        "# Compiled runtimes side by side (issue 13, point 1)",
        "",
        f"Command: `{doc['command']}`  ",
        f"Date: {doc['date']}; CPU: {facts['cpu_model']} ({facts['cpu_count']} CPUs, quota "
        f"{facts['cpu_limit_cores']}); threads given to onnxruntime/litert: {doc['threads']}; load average "
        f"(1 min) before {doc['load_average_before'][0]:.2f}, after {doc['load_average_after'][0]:.2f} "
        "(the host is shared with other work).  ",
        f"Side by side: {doc['warmup']} warm-up passes, then {doc['passes']} passes of each runtime, round robin. "
        f"Target: auto's median within {TARGET_RATIO}x of the fastest.",
        "",
        "| model | eager ms | tf-function ms | onnxruntime ms | litert ms | auto chose | auto / fastest | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["models"]:
        cells = [f"{r['side_by_side'][rt]['median_s'] * 1000:.1f}" + ("" if r['side_by_side'][rt]['note'] is None else "*")
                 for rt in (runtimes.EAGER, runtimes.TF_FUNCTION, runtimes.ONNXRUNTIME, runtimes.LITERT)]
        verdict = "met" if r["target_met"] else (
            f"missed; recheck {r['recheck']['auto_over_fastest']:.2f}x ({r['recheck']['verdict']})")
        lines.append(f"| {r['model']} | {' | '.join(cells)} | {r['auto']['runtime']} | "
                     f"{r['auto_over_fastest']:.2f}x | {verdict} |")
    lines += ["", "The choice (`choose_runtime`, 3 interleaved passes each, what `--runtime auto` records):", "",
              "| model | runtime | median ms | compile s | max abs error | matches | note |", "|---|---|---|---|---|---|---|"]
    for r in doc["models"]:
        for rt, row in r["auto"]["table"].items():
            median = "" if row["whole_median_s"] is None else f"{row['whole_median_s'] * 1000:.1f}"
            error = "" if row["max_abs_error"] is None else f"{row['max_abs_error']:.2g}"
            lines.append(f"| {r['model']} | {rt} | {median} | {row['compile_s']:.1f} | {error} | {row['matches']} | "
                         f"{row['note'] or ''} |")
    lines += ["", "select_s (choice wall minus the chosen compile): " + ", ".join(
        f"{r['model']} {r['auto']['select_s']:.1f} s" for r in doc["models"]), "",
        f"Output error relative to max |eager| (tolerance {TOLERANCE:g}): whole model / first half of the blocks", "",
        "| model | tf-function | onnxruntime | litert |", "|---|---|---|---|"]
    for r in doc["models"]:
        cells = []
        for rt in (runtimes.TF_FUNCTION, runtimes.ONNXRUNTIME, runtimes.LITERT):
            half = r["first_half_relative_error"][rt]
            cells.append(f"{r['side_by_side'][rt]['relative_error']:.2g} / "
                         + ("n/a" if half is None else f"{half:.2g}"))
        lines.append(f"| {r['model']} | {' | '.join(cells)} |")
    lines += ["", "`*`: the runtime fell back to tf-function (see the JSON's note).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=15)
    parser.add_argument("--recheck-passes", type=int, default=40)
    parser.add_argument("--model", action="append", choices=MODELS)
    args = parser.parse_args(argv)
    threads = default_threads()
    facts = host.host_metadata()
    doc = {"command": " ".join(["python", "benchmarks/runtimes_side_by_side.py", *(argv or sys.argv[1:])]),
           "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "host": {"cpu_model": facts.get("cpu_model"), "cpu_count": os.cpu_count(),
                    "cpu_limit_cores": facts.get("cpu_limit_cores"), "tensorflow": facts.get("tensorflow")},
           "threads": threads, "passes": args.passes, "warmup": WARMUP, "tolerance": TOLERANCE,
           "target_ratio": TARGET_RATIO, "load_average_before": list(os.getloadavg())}
    # One child process per model, as `scission benchmark --all` runs them: memory does not pile up.
    context = multiprocessing.get_context("spawn")
    doc["models"] = []
    for name in args.model or MODELS:
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            doc["models"].append(pool.submit(measure_model, name, args.passes, args.recheck_passes, threads).result())
    doc["load_average_after"] = list(os.getloadavg())
    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(RESULTS / "runtimes_side_by_side.json", json.dumps(doc, indent=1) + "\n")
    text = _markdown(doc)
    atomic_write_text(RESULTS / "runtimes_side_by_side.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
