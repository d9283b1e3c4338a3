"""Experiment files (YAML in experiments/): what `testbed run` measures on an emulated topology.

```yaml
name: wifi-mobilenetv2
topology: ../topologies/three-tier-wifi.yaml
models: [mobilenetv2]
repeats: 5                # scission benchmark repeats, in place on every node
requests: 20              # measured inference requests per configuration (after warm-up)
rounds: 5                 # interleave: every configuration gets requests/rounds requests per round
top_k: 3                  # best predicted configurations to measure ...
native: true              # ... plus device-only, edge-only and cloud-only
request_timeout_s: 30     # a request that takes longer fails (node stopped, link cut)
on_failure: continue      # or stop: end the run cleanly at the first failed request
faults:                   # optional, scripted: applied while measuring
  - {config: 1, after_requests: 3, action: stop-node, node: cloud}   # config: position or label
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from scission.files import read_yaml, validation_message
from testbed.errors import ExperimentFileError


@dataclass(frozen=True)
class FaultSpec:
    config: int | str  # 1-based position in the list of measured configurations, or a label ("cloud-only")
    after_requests: int
    action: str
    node: str | None = None
    link: tuple[str, str] | None = None


@dataclass(frozen=True)
class ExperimentSpec:
    name: str
    topology_path: Path
    models: tuple[str, ...]
    repeats: int
    requests: int
    rounds: int
    top_k: int
    native: bool
    warmup_requests: int
    request_timeout_s: float
    on_failure: str
    faults: tuple[FaultSpec, ...]
    device: str | None
    seed: int
    speed_probe_passes: int = 1
    source: Path | None = None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Fault(_Strict):
    config: int | str = 1
    after_requests: int = 0
    action: Literal["stop-node", "cut-link"]
    node: str | None = None
    link: list[str] | None = None


class _Experiment(_Strict):
    name: str | None = None
    topology: str
    models: list[str]
    repeats: int = 5
    requests: int = 20
    rounds: int = 5
    top_k: int = 3
    native: bool = True
    warmup_requests: int = 1
    request_timeout_s: float = 60.0
    on_failure: Literal["continue", "stop"] = "continue"
    faults: list[_Fault] = []
    device: str | None = None
    seed: int = 0
    speed_probe_passes: int = 1  # compute-speed probe per node next to each measurement; 0 turns it off

    @field_validator("models")
    @classmethod
    def _models(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("list at least one model")
        return [m.lower() for m in v]

    @field_validator("repeats", "requests", "top_k", "rounds")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"{v} must be at least 1")
        return v

    @field_validator("warmup_requests", "speed_probe_passes")
    @classmethod
    def _nonneg(cls, v: int) -> int:
        if v < 0:
            raise ValueError(f"{v} must be at least 0")
        return v

    @field_validator("speed_probe_passes")
    @classmethod
    def _passes(cls, v: int) -> int:
        if v > 100:
            raise ValueError(f"{v} must be at most 100")
        return v

    @field_validator("request_timeout_s")
    @classmethod
    def _timeout(cls, v: float) -> float:
        if not v > 0:
            raise ValueError(f"{v} must be greater than 0")
        return v


def experiment_from_dict(data: Any, base_dir: Path, source: Path | None = None) -> ExperimentSpec:
    if not isinstance(data, dict):
        raise ExperimentFileError("an experiment file must be a mapping with topology, models, requests, ...")
    try:
        m = _Experiment.model_validate(data)
    except ValidationError as exc:
        raise ExperimentFileError(validation_message(exc)) from None
    topology = Path(m.topology)
    if not topology.is_absolute():
        topology = base_dir / topology
    if not topology.is_file():
        raise ExperimentFileError(f"topology: {m.topology} does not exist (looked for {topology})")
    from scission.benchmark.models import known_models

    for model in m.models:
        if model not in known_models():
            raise ExperimentFileError(f"models: unknown model {model!r}; known models: {', '.join(known_models())}")
    faults = []
    for i, f in enumerate(m.faults):
        if f.action == "stop-node" and not f.node:
            raise ExperimentFileError(f"faults[{i}]: stop-node needs node")
        if f.action == "cut-link" and (not f.link or len(f.link) != 2):
            raise ExperimentFileError(f"faults[{i}]: cut-link needs link: [a, b]")
        faults.append(FaultSpec(f.config, f.after_requests, f.action, f.node, tuple(f.link) if f.link else None))
    return ExperimentSpec(
        name=m.name or (source.stem if source else "experiment"),
        topology_path=topology.resolve(),
        models=tuple(m.models),
        repeats=m.repeats,
        requests=m.requests,
        rounds=m.rounds,
        top_k=m.top_k,
        native=m.native,
        warmup_requests=m.warmup_requests,
        request_timeout_s=m.request_timeout_s,
        on_failure=m.on_failure,
        faults=tuple(faults),
        device=m.device,
        seed=m.seed,
        speed_probe_passes=m.speed_probe_passes,
        source=source,
    )


def load_experiment(path: str | Path) -> ExperimentSpec:

    path = Path(path)
    data = read_yaml(path, ExperimentFileError, "experiment file")
    try:
        return experiment_from_dict(data, path.parent, path)
    except ExperimentFileError as exc:
        raise ExperimentFileError(f"{path}: {exc}") from None
