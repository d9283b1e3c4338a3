"""Host report for `emulator doctor`: engine, cgroup version, qdiscs, tools and the mechanism links will use."""

from __future__ import annotations

from emulator import docker_backend
from emulator.capabilities import detect
from emulator.errors import EmulatorError
from emulator.image import node_image_tag

__all__ = ["diagnose"]


def diagnose() -> dict:
    """Each check is independent, so one missing piece (no engine) does not hide the others."""
    caps = detect()
    report: dict = {
        "host_cpus": caps.host_cpus,
        "cgroup_version": caps.cgroup_version,
        "qdiscs": caps.qdiscs,
        "has_ifb": caps.has_ifb,
        "tools": caps.tools,
        "mechanism": caps.mechanism,
        "notes": list(caps.notes),
    }
    try:
        engine = docker_backend.engine_info()
        report["engine"] = engine
        report["cgroup_version"] = int(engine.get("cgroup_version") or caps.cgroup_version)
        tag = node_image_tag()
        report["node_image"] = {"tag": tag, "is_built": docker_backend.image_exists(tag)}
    except EmulatorError as exc:
        report["engine"] = {"error": str(exc)}
    if not caps.qdiscs.get("netem"):
        report["notes"].append(
            "no sch_netem: links use tbf for rate and the user-space delay line for rtt, jitter and loss"
        )
    return report
