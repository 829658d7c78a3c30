"""The one conversion between video frames and model tensors: ``(T, H, W, 3)`` uint8 <-> ``(T, 3, H, W)`` [-1, 1]."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from jaxtyping import Float, UInt8
from torch import Tensor

from fastvmt.geometry import check_video_size

__all__ = ["frames_to_tensor", "tensor_to_frames"]


def frames_to_tensor(frames: Any) -> Float[Tensor, "t 3 h w"]:
    """``(T, H, W, 3)`` uint8 frames (numpy or torch) -> ``(T, 3, H, W)`` float32 in [-1, 1]; ``ValueError`` for a
    video beyond :func:`fastvmt.geometry.check_video_size`'s bound."""
    video = frames if isinstance(frames, Tensor) else torch.as_tensor(np.asarray(frames))
    if video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"frames must be (frames, height, width, 3), got shape {tuple(video.shape)}")
    if video.dtype != torch.uint8:
        raise TypeError(f"frames must be uint8, got {video.dtype}")
    check_video_size(*video.shape[:3])  # before the float copy, four times the frames' bytes
    return video.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def tensor_to_frames(video: Float[Tensor, "t 3 h w"]) -> UInt8[np.ndarray, "t h w 3"]:
    """``(T, 3, H, W)`` in [-1, 1] (values outside are clipped) -> ``(T, H, W, 3)`` uint8 numpy frames."""
    return video.float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
