"""The search's speed in two checkouts, interleaved (the host's load moves more than a change does).

    git archive a144f9e scission benchmarks | tar -x -C /tmp/old
    python benchmarks/search_speed_ab.py /tmp/old . --rounds 6

Each round runs, in a fresh interpreter per checkout, benchmarks/search_speed.py's synthetic 2,000-block
problem (4 tiers x 10 resources, top 5) three times; prints every time and the pooled medians.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

CHILD = """
import sys, time
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/benchmarks"]
from search_speed import synthetic
from scission.search import search
p = synthetic()
for _ in range(3):
    t = time.perf_counter(); search(p, 5); print(time.perf_counter() - t)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    times: dict[str, list[float]] = {args.before: [], args.after: []}
    for _ in range(args.rounds):
        for path in (args.before, args.after):
            out = subprocess.run([sys.executable, "-c", CHILD, path], capture_output=True, text=True, check=True)
            got = [float(x) for x in out.stdout.split()]
            times[path] += got
            print(path, " ".join(f"{t:.3f}" for t in got), flush=True)
    for path, ts in times.items():
        print(f"{path}: median {statistics.median(ts):.3f} s, min {min(ts):.3f} s over {len(ts)} runs")


if __name__ == "__main__":
    main()
