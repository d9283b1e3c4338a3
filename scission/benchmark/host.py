"""Facts about the machine a profile was measured on, so a profile says what its numbers belong to.

Read without importing TensorFlow: versions come from package metadata, limits from cgroup files.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import socket
from importlib import metadata
from pathlib import Path
from typing import Any

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None


def cpu_model() -> str | None:
    text = _read(Path("/proc/cpuinfo")) or ""
    for line in text.splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or None


def cpu_limit_cores(root: Path = CGROUP_ROOT) -> float | None:
    """CPU quota in cores from cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``; None when unlimited or absent."""
    v2 = _read(root / "cpu.max")
    if v2:
        quota, _, period = v2.partition(" ")
        if quota != "max" and period:
            return int(quota) / int(period)
        return None
    quota = _read(root / "cpu" / "cpu.cfs_quota_us") or _read(root / "cpu,cpuacct" / "cpu.cfs_quota_us")
    period = _read(root / "cpu" / "cpu.cfs_period_us") or _read(root / "cpu,cpuacct" / "cpu.cfs_period_us")
    if quota and period and int(quota) > 0:
        return int(quota) / int(period)
    return None


def memory_limit_bytes(root: Path = CGROUP_ROOT) -> int | None:
    """Memory limit from cgroup v2 ``memory.max`` or v1 ``memory.limit_in_bytes``; None when unlimited or absent."""
    v2 = _read(root / "memory.max")
    if v2:
        return None if v2 == "max" else int(v2)
    v1 = _read(root / "memory" / "memory.limit_in_bytes")
    if v1 and int(v1) < 1 << 60:  # v1 reports "unlimited" as a huge number
        return int(v1)
    return None


def _version(*names: str) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def host_metadata() -> dict[str, Any]:
    """Resource metadata for ``profile.json``: host, CPU, limits, framework versions and the date (UTC)."""
    return {
        "host": socket.gethostname(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_limit_cores": cpu_limit_cores(),
        "memory_limit_bytes": memory_limit_bytes(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": _version("tensorflow-cpu", "tensorflow"),
        "keras": _version("keras"),
        "numpy": _version("numpy"),
        "onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
        "execution": "eager layer calls (model(x, training=False); blocks chained in one pass per repeat)",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
