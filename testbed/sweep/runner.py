"""Run a sweep: expand points, skip finished ones, run the rest on local processes or a Dask cluster.

Simulated points are independent and CPU-bound, so they run in parallel worker processes (one per
core by default) or on Dask workers. Emulated points share the host's containers and links, so they
run one at a time in this process.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from testbed.errors import SweepError
from testbed.sweep.points import run_point
from testbed.sweep.spec import Point, SweepSpec
from testbed.sweep.store import ResultStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepOutcome:
    total: int
    skipped: int
    ran: int
    failed: int
    results_path: Path
    wall_s: float


def _task(spec: SweepSpec, point: Point, work_root: Path) -> tuple:
    axes = {a.name: a for a in spec.axes}
    return (
        spec.base_kind,
        str(spec.base_path),
        point.as_dict(),
        {name: (a.target.links, a.target.nodes) for name, a in axes.items()},
        {name: a.column for name, a in axes.items()},
        point.seed,
        str(work_root / point.key),
    )


def connect_dask(address: str, timeout_s: float = 5.0):
    """A distributed Client for an existing scheduler, or one clear SweepError when it does not answer."""
    try:
        from distributed import Client
    except ImportError:
        raise SweepError("--executor dask needs the 'distributed' package (pip install 'dask[distributed]')") from None
    try:
        return Client(address, timeout=f"{timeout_s}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise SweepError(f"Dask scheduler {address} is unreachable ({type(exc).__name__}: {exc})") from None


def run_sweep(
    spec: SweepSpec,
    out_dir: str | Path,
    executor: str = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    on_progress: Callable[[int, int, str], None] | None = None,
) -> SweepOutcome:
    """Run every unfinished point; ``on_progress(done, total, label)`` is called as points finish."""
    start = time.perf_counter()
    store = ResultStore(out_dir)
    points = spec.expand()
    keys = [p.key for p in points]
    done = store.done_keys()
    todo = [p for p in points if p.key not in done]
    skipped = len(points) - len(todo)
    work_root = Path(out_dir).resolve() / "work"  # workers resolve paths against the base file's folder
    client = None
    if spec.base_kind == "experiment":
        executor = "serial"  # emulated points share this host
    if executor == "dask":
        if not scheduler:
            raise SweepError("--executor dask needs --scheduler ADDRESS (e.g. tcp://127.0.0.1:8786)")
        client = connect_dask(scheduler)
    elif executor not in ("local", "serial"):
        raise SweepError(f"unknown executor {executor!r}; use local or dask")

    finished = skipped
    failed = 0  # (point, seed) pairs whose rows carry an error
    last_merge = 0.0
    if on_progress:
        on_progress(finished, len(points), "resuming" if skipped else "starting")

    def record(point: Point, rows: list[dict]) -> None:
        nonlocal finished, last_merge, failed
        store.write_part(point.key, rows)
        failed += any(r.get("error") for r in rows)
        finished += 1
        if on_progress:
            on_progress(finished, len(points), ", ".join(f"{k}={v}" for k, v in point.values))
        if time.perf_counter() - last_merge > 2.0:
            store.merge(keys)
            last_merge = time.perf_counter()

    try:
        if executor == "serial" or not todo:
            for point in todo:
                record(point, run_point(*_task(spec, point, work_root)))
        elif executor == "local":
            count = workers or os.cpu_count() or 1
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=count, mp_context=ctx) as pool:
                pending = {pool.submit(run_point, *_task(spec, p, work_root)): p for p in todo}
                try:
                    while pending:
                        ready, _ = wait(pending, return_when=FIRST_COMPLETED)
                        for future in ready:
                            point = pending.pop(future)
                            record(point, future.result())
                except BaseException:
                    for future in pending:
                        future.cancel()
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
        else:
            from distributed import as_completed

            with client.as_current():
                futures = {client.submit(run_point, *_task(spec, p, work_root), pure=False): p for p in todo}
                try:
                    for future in as_completed(list(futures)):
                        record(futures[future], future.result())
                finally:
                    client.cancel(list(futures))
    finally:
        store.merge(keys)
        if client is not None:
            client.close()
    return SweepOutcome(len(points), skipped, finished - skipped, failed, store.folder / "results.parquet",
                        time.perf_counter() - start)
