"""Experiment files (YAML in experiments/) -> ExperimentSpec: what `testbed run` measures on a topology.

```yaml
name: wifi-mobilenetv2
topology: ../topologies/three-tier-wifi.yaml
models: [mobilenetv2]
repeats: 5                # scission benchmark repeats, in place on every node
runtime: auto             # what the profiles are timed in and the agents serve with (scission.runtimes)
requests: 20              # measured inference requests per configuration (after warm-up)
rounds: 5                 # interleave: every configuration gets requests/rounds requests per round
top_k: 3                  # best predicted configurations to measure ...
native: true              # ... plus <tier>-only for every tier of the topology that has a node
request_timeout_s: 30     # a request that takes longer fails (node stopped, link cut)
on_failure: continue      # or stop: end the run cleanly at the first failed request
faults:                   # optional, scripted: applied while measuring
  - {config: 1, after_requests: 3, action: stop-node, node: cloud}   # config: position or label
```

The pydantic models are the spec objects (frozen, unknown keys refused): each field is written once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError, ValidationInfo, field_validator, model_validator

from scission.files import read_yaml, validation_message
from testbed.errors import ExperimentFileError
from testbed.schema import Strict, at_least, named_quantity

__all__ = ["ExperimentSpec", "FaultSpec", "experiment_from_dict", "load_experiment"]


class FaultSpec(Strict):
    """A scripted fault: applied before request ``after_requests`` of one measured configuration."""

    # 1-based position in the list of measured configurations, a label ("cloud-only", "top-2") or a
    # configuration id in the canonical layer form or the "blocks:" form (scission.problem)
    config: int | str = 1
    after_requests: int = 0
    action: Literal["stop-node", "cut-link"]
    node: str | None = None
    link: tuple[str, str] | None = None

    @model_validator(mode="after")
    def _target(self) -> FaultSpec:
        if self.action == "stop-node" and not self.node:
            raise ValueError("stop-node needs node")
        if self.action == "cut-link" and not self.link:
            raise ValueError("cut-link needs link: [a, b]")
        return self

    def applies_to(self, position: int, label: str, ids: tuple[str, ...] = ()) -> bool:
        """Whether it targets this configuration; ``ids`` are its id forms (``Configuration.id``, ``block_id``)."""
        wanted = self.config.replace(" ", "") if isinstance(self.config, str) else self.config
        return wanted in (position, label, *ids)


class ExperimentSpec(Strict):
    name: str
    topology: Path  # absolute once loaded (relative paths are resolved against the file's folder)
    models: tuple[str, ...]
    repeats: int = 5
    requests: int = 20
    rounds: int = 5
    top_k: int = 3
    native: bool = True
    warmup_requests: int = 1
    request_timeout_s: float = 60.0
    on_failure: Literal["continue", "stop"] = "continue"
    faults: tuple[FaultSpec, ...] = ()
    device: str | None = None
    seed: int = 0
    speed_probe_passes: int = 1  # compute-speed probe per node next to each measurement; 0 turns it off
    # Benchmark every node at once (when their CPU limits fit the host beside the delay lines). Off by
    # default: the nodes share the host's vCPUs and caches, and on the 2-vCPU host a probe alone right
    # after a joint benchmark differed from it by 0.73-1.39x, which could not be told from the host's drift.
    parallel_benchmark: bool = False
    # The runtime `scission benchmark --runtime` times the profiles in (auto: the fastest that matches eager,
    # chosen on each node); every node then serves its stages in the runtime its own profile recorded.
    runtime: str = "auto"
    source: Path | None = None  # the experiment file, when loaded from one

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and not data.get("name"):
            source = (info.context or {}).get("source") or data.get("source")
            data = {**data, "name": Path(source).stem if source else "experiment"}
        return data

    _units = field_validator("request_timeout_s", mode="before")(named_quantity)  # '30s', '2min' or bare seconds

    @field_validator("topology")
    @classmethod
    def _topology(cls, v: Path, info: ValidationInfo) -> Path:
        path = v if v.is_absolute() else Path((info.context or {}).get("base_dir", ".")) / v
        if not path.is_file():
            raise ValueError(f"{v} does not exist (looked for {path})")
        return path.resolve()

    @field_validator("models")
    @classmethod
    def _models(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        from scission.benchmark.models import known_models  # the model registry; TensorFlow stays unloaded

        if not v:
            raise ValueError("list at least one model")
        models = tuple(m.lower() for m in v)
        for model in models:
            if model not in known_models():
                raise ValueError(f"unknown model {model!r}; known models: {', '.join(known_models())}")
        return models

    @field_validator("repeats", "requests", "top_k", "rounds")
    @classmethod
    def _positive(cls, v: int) -> int:
        return at_least(v, 1)

    @field_validator("warmup_requests", "speed_probe_passes")
    @classmethod
    def _nonneg(cls, v: int) -> int:
        return at_least(v, 0)

    @field_validator("speed_probe_passes")
    @classmethod
    def _passes(cls, v: int) -> int:
        if v > 100:
            raise ValueError(f"{v} must be at most 100")
        return v

    @field_validator("runtime")
    @classmethod
    def _runtime(cls, v: str) -> str:
        from scission.errors import UnknownRuntime
        from scission.runtimes import check_runtime

        try:
            return check_runtime(v)
        except UnknownRuntime as exc:
            raise ValueError(str(exc)) from None

    @field_validator("request_timeout_s")
    @classmethod
    def _timeout(cls, v: float) -> float:
        if not v > 0:
            raise ValueError(f"{v} must be greater than 0")
        return v


def experiment_from_dict(data: Any, base_dir: Path, source: Path | None = None) -> ExperimentSpec:
    """The spec of an experiment document; messages start with ``source`` when it is given."""
    where = f"{source}: " if source is not None else ""
    if not isinstance(data, dict):
        raise ExperimentFileError(f"{where}an experiment file must be a mapping with topology, models, requests, ...")
    if "source" in data:
        raise ExperimentFileError(f"{where}source: not a field of an experiment file")
    try:
        return ExperimentSpec.model_validate({**data, "source": source},
                                             context={"base_dir": base_dir, "source": source})
    except ValidationError as exc:
        raise ExperimentFileError(where + validation_message(exc)) from None


def load_experiment(path: str | Path) -> ExperimentSpec:
    path = Path(path)
    return experiment_from_dict(read_yaml(path, ExperimentFileError, "experiment file"), path.parent, path)
