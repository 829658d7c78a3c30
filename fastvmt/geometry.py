"""Video geometry: the sizes a Wan backbone accepts, the latent and token shapes they map to, token positions.

Wan's VAE compresses time by 4 (the first frame alone, then groups of 4) and space by 8; the DiT then
patchifies the latent by (1, 2, 2). So a video of ``T = 4k + 1`` frames at ``H x W`` pixels (multiples of 16)
becomes a latent ``(1, 16, (T - 1) / 4 + 1, H / 8, W / 8)`` and a token grid ``(F, H / 16, W / 16)``.
"""

from __future__ import annotations

import torch
from jaxtyping import Real
from torch import Tensor

from fastvmt.interfaces import TokenGrid, VideoGeometry

__all__ = [
    "SPATIAL_FACTOR",
    "TEMPORAL_FACTOR",
    "check_frame_count",
    "check_multiple",
    "token_positions",
    "video_geometry",
]

#: The VAE's compression: frames ``4k + 1 -> k + 1``, pixels ``8 -> 1``.
TEMPORAL_FACTOR = 4
SPATIAL_FACTOR = 8


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def check_frame_count(num_frames: int, factor: int = TEMPORAL_FACTOR) -> int:
    """``num_frames`` if it is ``factor * k + 1``; else ``ValueError`` naming the nearest valid counts."""
    _positive_int("num_frames", num_frames)
    if (num_frames - 1) % factor:
        below = (num_frames - 1) // factor * factor + 1
        raise ValueError(
            f"num_frames must be {factor}k+1 (1, 5, 9, ..., 81), got {num_frames}; "
            f"use {below} or {below + factor} frames"
        )
    return num_frames


def check_multiple(name: str, value: int, multiple: int) -> int:
    """``value`` if it is a positive multiple of ``multiple``; else ``ValueError`` naming the nearest ones."""
    _positive_int(name, value)
    if value % multiple:
        below = value // multiple * multiple
        nearest = f"{below} or {below + multiple}" if below else f"{multiple}"
        raise ValueError(f"{name} must be a multiple of {multiple} pixels, got {value}; use {nearest}")
    return value


def video_geometry(
    num_frames: int,
    height: int,
    width: int,
    *,
    latent_channels: int,
    patch_size: tuple[int, int, int] = (1, 2, 2),
) -> VideoGeometry:
    """Latent shape and token grid of a video; ``ValueError`` (nearest valid values named) when unsupported."""
    pf, ph, pw = patch_size
    check_frame_count(num_frames)
    check_multiple("height", height, SPATIAL_FACTOR * ph)
    check_multiple("width", width, SPATIAL_FACTOR * pw)
    frames = (num_frames - 1) // TEMPORAL_FACTOR + 1
    if frames % pf:
        raise ValueError(f"the latent's {frames} frames do not divide into temporal patches of {pf}")
    h8, w8 = height // SPATIAL_FACTOR, width // SPATIAL_FACTOR
    return VideoGeometry(
        num_frames=num_frames,
        height=height,
        width=width,
        latent_shape=(1, latent_channels, frames, h8, w8),
        grid=TokenGrid(frames // pf, h8 // ph, w8 // pw),
    )


def token_positions(height: int, width: int, *, dtype: torch.dtype, device: torch.device) -> Real[Tensor, "s 2"]:
    """``(row, col)`` of every token of an ``height x width`` grid, raster order."""
    rows = torch.arange(height, dtype=dtype, device=device).repeat_interleave(width)
    cols = torch.arange(width, dtype=dtype, device=device).repeat(height)
    return torch.stack([rows, cols], dim=-1)
