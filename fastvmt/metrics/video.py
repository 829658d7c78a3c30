"""Videos as the metrics take them: checked and converted to uint8 ``(T, H, W, 3)`` RGB arrays.

Accepted layouts: uint8 ``(T, H, W, 3)`` (numpy or torch; what video files decode to) and float
``(T, 3, H, W)`` in ``[-1, 1]`` (numpy or torch; what ``Backbone.decode`` returns).

``read_video`` is a small imageio reader kept here for ``fastvmt eval``: no ``fastvmt.io`` video reader existed
when the metrics were written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from jaxtyping import UInt8

__all__ = ["as_uint8_video", "read_video"]

_LAYOUTS = "uint8 (T, H, W, 3) or float (T, 3, H, W) in [-1, 1]"


def _to_numpy(video: Any, name: str) -> np.ndarray:
    if isinstance(video, np.ndarray):
        return video
    import torch

    if isinstance(video, torch.Tensor):
        return video.detach().cpu().float().numpy() if video.is_floating_point() else video.detach().cpu().numpy()
    raise TypeError(f"{name}: expected a numpy array or torch tensor ({_LAYOUTS}), got {type(video).__name__}")


def as_uint8_video(video: Any, name: str = "video") -> UInt8[np.ndarray, "t h w 3"]:
    """``video`` as a contiguous uint8 ``(T, H, W, 3)`` array; ``TypeError``/``ValueError`` naming the problem."""
    array = _to_numpy(video, name)
    if array.ndim != 4:
        raise ValueError(f"{name}: expected 4 dimensions ({_LAYOUTS}), got shape {tuple(array.shape)}")
    if array.dtype == np.uint8:
        if array.shape[-1] != 3:
            raise ValueError(f"{name}: uint8 videos are (T, H, W, 3) RGB, got shape {tuple(array.shape)}")
        return np.ascontiguousarray(array)
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"{name}: expected uint8 or floating point values ({_LAYOUTS}), got dtype {array.dtype}")
    if array.shape[1] != 3:
        raise ValueError(f"{name}: float videos are (T, 3, H, W) in [-1, 1], got shape {tuple(array.shape)}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    low, high = float(array.min()), float(array.max())
    if low < -1.001 or high > 1.001:
        raise ValueError(
            f"{name}: float videos must lie in [-1, 1] (Backbone.decode's range), got [{low:.3g}, {high:.3g}]; "
            "pass uint8 frames or rescale with x / 127.5 - 1"
        )
    frames = np.clip((array.transpose(0, 2, 3, 1) + 1.0) * 127.5, 0.0, 255.0)
    return np.ascontiguousarray(np.rint(frames).astype(np.uint8))


def read_video(path: str | Path) -> UInt8[np.ndarray, "t h w 3"]:
    """Every frame of a video file (mp4, webm, gif, ...) as uint8 ``(T, H, W, 3)`` RGB."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video {str(path)!r} does not exist or is not a file")
    import imageio.v3 as iio

    plugin = None if path.suffix.lower() in (".gif", ".png", ".webp", ".apng") else "FFMPEG"
    try:
        frames = np.asarray(iio.imread(path, plugin=plugin) if plugin else iio.imread(path))
    except Exception as exc:
        raise ValueError(f"could not read video {str(path)!r}: {exc}") from exc
    if frames.ndim != 4 or frames.shape[-1] not in (3, 4):
        raise ValueError(f"video {str(path)!r} decoded to shape {frames.shape}, expected (T, H, W, 3)")
    return as_uint8_video(np.ascontiguousarray(frames[..., :3]).astype(np.uint8, copy=False), name=str(path))
