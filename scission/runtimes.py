"""Names of the runtimes a block range can be served and profiled with (no TensorFlow here).

A deployment does not run a model layer call by layer call as Keras's eager ``model(x)`` does: it runs
one compiled callable. ``tf-function`` (a TensorFlow graph) always works; ``onnxruntime`` and ``litert``
work where the block range converts; ``eager`` is the Keras reference, used only on request. ``auto``
picks, by measurement on the resource, the fastest runtime whose output matches the eager reference.
The compiling code is ``scission.benchmark.compiled``.
"""

from __future__ import annotations

from scission.errors import UnknownRuntime

TF_FUNCTION = "tf-function"
ONNXRUNTIME = "onnxruntime"
LITERT = "litert"
EAGER = "eager"
AUTO = "auto"
RUNTIMES = (TF_FUNCTION, ONNXRUNTIME, LITERT, EAGER)
COMPILED = (TF_FUNCTION, ONNXRUNTIME, LITERT)  # the candidates of ``auto``
FALLBACK = TF_FUNCTION  # what a range that cannot convert runs with
LEGACY = EAGER  # profiles written before runtimes were recorded were timed eagerly


def check_runtime(name: str, allow_auto: bool = True) -> str:
    """The runtime name, or one line naming the accepted ones."""
    accepted = (*RUNTIMES, AUTO) if allow_auto else RUNTIMES
    if name not in accepted:
        raise UnknownRuntime(f"unknown runtime {name!r}; use one of {', '.join(accepted)}")
    return name
