"""Files every package writes or reads the same way: atomic writes, YAML documents, validation messages.

It lives in scission, the lowest layer, so that emulator and testbed use the same one: a reader never
sees half a file, a failed write leaves neither a torn file nor its temp file behind, and every input
file's errors read alike.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_parquet", "atomic_write_text", "field_path",
           "load_document", "read_yaml", "validation_message"]


def atomic_write(path: str | Path, fill: Callable[[str], None]) -> Path:
    """Write ``path`` through ``fill(temp_path)``: fsync, then rename over it; the temp file never stays."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        fill(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def atomic_write_parquet(frame: Any, path: str | Path) -> Path:
    """A pandas DataFrame as Parquet (no index)."""
    return atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))


def read_yaml(path: str | Path, error: type[Exception], what: str) -> Any:
    """The parsed document, or ``error`` naming the file (and line) and what is wrong with it."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise error(f"{what} {path} is a folder, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read {what} {path}: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise error(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None


def load_document(path: str | Path, error: type[Exception], what: str, parse: Callable[[Any, Path], T]) -> T:
    """Read a YAML input file and build its spec with ``parse(document, folder_of_the_file)``.

    Every message then starts with the file's path, whichever step found the problem.
    """
    path = Path(path)
    data = read_yaml(path, error, what)
    try:
        return parse(data, path.parent)
    except error as exc:
        raise error(f"{path}: {exc}") from None


def field_path(loc: tuple[Any, ...]) -> str:
    """pydantic's error location as a field path: ``links[1].bandwidth`` (its internal steps left out)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("function-", "list[", "_")) or part == "tagged-union":
            continue  # pydantic's steps into validators and union members, not fields of the file
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
