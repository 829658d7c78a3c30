"""The first frame of an image-to-video run: read from a file or taken as an array, fitted to the run's size.

Fitting is the reference video's (:func:`fastvmt.io.transforms.plan_resize`): the largest centred window of the
run's aspect ratio, resized with Lanczos. An image is bounded like a video frame (:data:`MAX_FRAME_PIXELS`), checked
from its header before it is decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from jaxtyping import UInt8
from PIL import Image

from fastvmt.geometry import MAX_FRAME_PIXELS
from fastvmt.io.checks import VideoError
from fastvmt.io.transforms import plan_resize

__all__ = ["FittedImage", "fit_image", "read_image"]

#: The smallest side of a first frame: one token of the DiT.
MIN_IMAGE_SIDE = 16


@dataclass(frozen=True)
class FittedImage:
    """The ``(H, W, 3)`` uint8 frame at the run's size and what was done to fit it (cropped, resized)."""

    frame: UInt8[np.ndarray, "h w 3"]
    notes: tuple[str, ...]


def _check_size(width: int, height: int, what: str) -> None:
    if min(width, height) < MIN_IMAGE_SIDE:
        raise VideoError(f"{what} is {width}x{height} pixels; an image needs at least {MIN_IMAGE_SIDE} a side")
    if width * height > MAX_FRAME_PIXELS:
        raise VideoError(f"{what} is {width}x{height} = {width * height:,} pixels; fastvmt takes at most "
                         f"{MAX_FRAME_PIXELS:,} a frame")


def fit_image(image: Any, height: int, width: int, what: str = "the image") -> FittedImage:
    """``image`` (an ``(H, W, 3)`` uint8 array or a PIL image, any size) centre-cropped and resized to
    ``height x width``; :class:`VideoError` for anything else or a size out of bounds."""
    if isinstance(image, Image.Image):
        _check_size(image.width, image.height, what)
        image = np.asarray(image.convert("RGB"), dtype=np.uint8)
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        described = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image)
        raise VideoError(f"{what} must be an (height, width, 3) uint8 RGB array, a PIL image or a file, got "
                         f"{described}")
    _check_size(image.shape[1], image.shape[0], what)
    plan = plan_resize(image.shape[:2], height, width)
    return FittedImage(np.array(plan.apply(np.ascontiguousarray(image))), plan.notes)  # a writable copy


def read_image(path: str | Path, height: int, width: int) -> FittedImage:
    """The image file at ``path`` as an RGB frame fitted to ``height x width`` (:func:`fit_image`); one
    :class:`VideoError` naming the file when it is missing, not an image, corrupt or out of bounds."""
    path = Path(path)
    what = f"image {str(path)!r}"
    if not path.is_file():
        raise VideoError(f"{what} does not exist or is not a file")
    try:
        with Image.open(path) as image:
            _check_size(image.width, image.height, what)  # from the header, before decoding
            image.load()
            return fit_image(image, height, width, what)
    except VideoError:
        raise
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as error:
        raise VideoError(f"cannot read {what}: {error}") from None
