"""Benchmark models one child process each, so memory never grows across models (``--all``).

The child (``scission.benchmark.worker``) writes its model's profile before it exits, so a failure in
a later model leaves every earlier profile on disk. No TensorFlow in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from scission.benchmark.worker import MARKER, Job
from scission.errors import BenchmarkError

ProgressFn = Callable[[int, int], None]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env


def run_job(job: Job, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Run one model in a fresh Python process; returns its summary.

    Raises:
        BenchmarkError: the child reported bad input, or died (the message carries its last stderr line).
    """
    argv = [sys.executable, "-m", "scission.benchmark.worker", job.to_json()]
    result: dict[str, Any] | None = None
    message: str | None = None
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as errors:
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, text=True, env=_child_env()) as process:
            for line in process.stdout or ():
                if not line.startswith(MARKER):
                    continue
                event = json.loads(line[len(MARKER):])
                if event["event"] == "progress" and progress:
                    progress(event["done"], event["total"])
                elif event["event"] == "result":
                    result = event["summary"]
                elif event["event"] == "error":
                    message = event["message"]
            returncode = process.wait()
        if message is not None:
            raise BenchmarkError(message)
        if result is None or returncode != 0:
            errors.seek(0)
            lines = [ln.strip() for ln in errors.read().splitlines() if ln.strip()]
            tail = lines[-1] if lines else "no error output"
            raise BenchmarkError(f"benchmark of model {job.model} died (exit status {returncode}): {tail}")
    return result


def run_jobs(jobs: Iterable[Job], progress: Callable[[Job, int, int], None] | None = None) -> Iterator[dict[str, Any]]:
    """Yield each model's summary as soon as its child finishes; stops at the first failure."""
    for job in jobs:
        callback = (lambda done, total, job=job: progress(job, done, total)) if progress else None
        yield run_job(job, callback)
