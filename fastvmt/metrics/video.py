"""Videos as the metrics take them: checked and converted to uint8 ``(T, H, W, 3)`` RGB arrays.

Accepted layouts: uint8 ``(T, H, W, 3)`` (numpy or torch; what video files decode to) and float
``(T, 3, H, W)`` in ``[-1, 1]`` (numpy or torch; what ``Backbone.decode`` returns). Video files are read with
``fastvmt.io.read_video(path, num_frames="all")``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from jaxtyping import UInt8

__all__ = ["as_uint8_video"]

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
            "pass uint8 frames, or floats scaled to [-1, 1] as fastvmt.io.frames.frames_to_tensor does"
        )
    import torch

    from fastvmt.io.frames import tensor_to_frames

    return np.ascontiguousarray(tensor_to_frames(torch.from_numpy(np.ascontiguousarray(array))))

