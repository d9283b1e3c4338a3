"""Peak memory a conversion adds: mobilenetv2's whole model in onnxruntime and litert, one process each.

Writes benchmarks/results/conversion_memory.md; the memory guard in scission/benchmark/compiled.py is fitted to it.
Run: .venv/bin/python benchmarks/conversion_memory.py
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHILD = """
import json, os, resource, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import keras, numpy as np
from scission.benchmark.compiled import compile_range
from scission.benchmark.graph import analyse, graph_model
keras.utils.set_random_seed(0)
m = keras.applications.MobileNetV2(weights=None)
a = analyse(m)
x = np.random.rand(1, 224, 224, 3).astype("float32")
compile_range(a.blocks, "tf-function", x, graph_model(m))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
c = compile_range(a.blocks, sys.argv[1], x, graph_model(m))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"runtime": c.runtime, "note": c.note, "peak_before_bytes": before, "peak_after_bytes": after,
                  "weights_bytes": 4 * sum(b.param_count for b in a.blocks)}))
"""


def main() -> int:
    rows = []
    for runtime in ("onnxruntime", "litert"):
        out = subprocess.run([sys.executable, "-c", CHILD, runtime], capture_output=True, text=True, cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    lines = ["# Memory a conversion adds (mobilenetv2, whole model)", "",
             f"`.venv/bin/python benchmarks/conversion_memory.py`, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC. "
             "Peak RSS of the process after a tf-function compile, then after converting in the runtime.", "",
             "| runtime | used | weights MB | peak before MB | peak after MB | added MB |", "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['runtime']} | {r['runtime']} | {r['weights_bytes'] / 1e6:.0f} | {r['peak_before_bytes'] / 1e6:.0f} | "
                     f"{r['peak_after_bytes'] / 1e6:.0f} | {(r['peak_after_bytes'] - r['peak_before_bytes']) / 1e6:.0f} |")
    (REPO / "benchmarks" / "results" / "conversion_memory.md").write_text("\n".join(lines) + "\n")
    (REPO / "benchmarks" / "results" / "conversion_memory.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
