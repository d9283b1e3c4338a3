"""Reading a YAML input file, and turning a validation error into one line naming the field.

Shared by the topology, simulation, experiment and sweep loaders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_yaml(path: str | Path, error: type[Exception], what: str) -> Any:
    """The parsed document, or ``error`` naming the file (and line) and what is wrong with it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read {what} {path}: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise error(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None


def field_path(loc: tuple[Any, ...]) -> str:
    """pydantic's error location as a field path: ``links[1].bandwidth`` (its internal steps left out)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith("function-") or part in ("tagged-union", "list[tuple[float,float]]"):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def validation_message(exc: Any) -> str:
    """The first error of a pydantic ValidationError as ``field.path: what is wrong``."""
    err = exc.errors(include_url=False)[0]
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        msg = "is missing"
    elif err["type"] == "extra_forbidden":
        msg = "is not a known field"
    elif err["type"] == "literal_error":
        msg = f"{err.get('input')!r} is not allowed; {msg[0].lower()}{msg[1:]}"
    return f"{field_path(tuple(err['loc']))}: {msg}"
