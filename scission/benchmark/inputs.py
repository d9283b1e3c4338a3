"""The input a benchmark feeds a model: a real image resized and preprocessed the model's way, or a
deterministic synthetic one (same seed, same bytes, so two machines time the same work)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from scission.errors import BenchmarkError

SYNTHETIC_SEED = 20200901


def check_image(path: str) -> None:
    """Fail early, before any model is built, if the image cannot be decoded.

    Raises:
        BenchmarkError: the file is missing or not an image Pillow can read.
    """
    _read_image(path)


def _read_image(path: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    if not Path(path).is_file():
        raise BenchmarkError(f"input image {path} does not exist")
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise BenchmarkError(f"cannot read input image {path}: {exc}") from None


def _image_shape(input_shape: tuple[int | None, ...], label: str,
                 image_size: tuple[int, int]) -> tuple[int, int, int]:
    """(height, width, channels) to feed; a model that accepts any size gets the image's own size."""
    dims = tuple(input_shape[1:])
    if len(dims) != 3 or dims[2] not in (1, 3):
        raise BenchmarkError(
            f"model {label} takes input of shape {tuple(input_shape)}, not an image (height, width, 1 or 3 channels)"
        )
    width, height = image_size
    return int(dims[0] or height), int(dims[1] or width), int(dims[2])


def synthetic_input(input_shape: tuple[int | None, ...], dtype: str, preprocess: Callable[[Any], Any] | None,
                    seed: int = SYNTHETIC_SEED) -> np.ndarray:
    """A batch of one: uniform pixels 0-255 through the model's preprocessing, or [0, 1) when it has none.

    Unknown (None) dimensions other than the batch become 224 so image models of any size still run.
    """
    rng = np.random.default_rng(seed)
    shape = (1,) + tuple(224 if d is None else int(d) for d in input_shape[1:])
    if preprocess is not None:
        pixels = rng.uniform(0.0, 255.0, size=shape).astype("float32")
        return np.asarray(preprocess(pixels), dtype="float32")
    if np.dtype(dtype).kind in "iu":
        return rng.integers(0, 2, size=shape).astype(dtype)
    return rng.uniform(0.0, 1.0, size=shape).astype(dtype)


def image_input(path: str, input_shape: tuple[int | None, ...], preprocess: Callable[[Any], Any] | None,
                label: str) -> np.ndarray:
    """The image resized (bilinear) to the model's input and preprocessed its way (or scaled to [0, 1]).

    Raises:
        BenchmarkError: unreadable image, or a model whose input is not an image.
    """
    from PIL import Image

    image = _read_image(path)
    height, width, channels = _image_shape(input_shape, label, image.size)
    image = image.convert("RGB" if channels == 3 else "L")
    image = image.resize((width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype="float32").reshape((1, height, width, channels))
    if preprocess is not None:
        return np.asarray(preprocess(pixels), dtype="float32")
    return pixels / 255.0
