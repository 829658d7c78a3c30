"""Video geometry: the sizes a Wan backbone accepts, the latent and token shapes they map to, token positions.

Wan's VAE compresses time by 4 (the first frame alone, then groups of 4) and space by 8; the DiT then
patchifies the latent by (1, 2, 2). So a video of ``T = 4k + 1`` frames at ``H x W`` pixels (multiples of 16)
becomes a latent ``(1, 16, (T - 1) / 4 + 1, H / 8, W / 8)`` and a token grid ``(F, H / 16, W / 16)``.
Every rule about frame counts and sizes lives here; checks fail with ``ValueError`` naming the nearest valid
values. One of them bounds the size of any video fastvmt reads, converts or generates
(:func:`check_video_size`), so that an absurd size is refused before anything is allocated for it.
"""

from __future__ import annotations

import torch
from jaxtyping import Real
from torch import Tensor

from fastvmt.interfaces import TokenGrid, VideoGeometry

__all__ = [
    "LARGEST_RELEASED_VIDEO",
    "MAX_FRAME_PIXELS",
    "MAX_VIDEO_PIXELS",
    "PATCH_SIZE",
    "ROPE_POSITIONS",
    "SIZE_FACTOR",
    "SIZE_MULTIPLE",
    "SPATIAL_FACTOR",
    "TEMPORAL_FACTOR",
    "check_frame_count",
    "check_multiple",
    "check_video_size",
    "frame_count_at_least",
    "frame_count_at_most",
    "token_grid",
    "token_positions",
    "video_frame_count",
    "video_geometry",
]

#: The VAE's compression: frames ``4k + 1 -> k + 1``, pixels ``8 -> 1``.
TEMPORAL_FACTOR = 4
SPATIAL_FACTOR = 8
#: Wan's DiT patch, latent ``(frames, rows, cols)`` per token.
PATCH_SIZE = (1, 2, 2)
#: Heights and widths are multiples of this many pixels (one token: VAE factor x patch).
SIZE_MULTIPLE = SPATIAL_FACTOR * PATCH_SIZE[1]

#: Wan2.1's largest released video, ``(frames, height, width)``: 81 frames of 1280x720 (the 14B at 720p).
LARGEST_RELEASED_VIDEO = (81, 720, 1280)
#: How many times that video's pixels fastvmt takes, in one frame and in all: 9, so that a frame may be 4K UHD
#: (3840x2160 is 9 x 1280x720) and a video 81 of them (2 GB as uint8 RGB, 8 GB as the float32 tensor the VAE reads).
SIZE_FACTOR = 9
#: The bound on one frame's pixels and on a whole video's (frames x height x width).
MAX_FRAME_PIXELS = SIZE_FACTOR * LARGEST_RELEASED_VIDEO[1] * LARGEST_RELEASED_VIDEO[2]
MAX_VIDEO_PIXELS = LARGEST_RELEASED_VIDEO[0] * MAX_FRAME_PIXELS
#: Positions of the DiT's rotary embedding tables along each token axis (diffsynth's ``WanModel``): a video has at
#: most this many latent frames, and at most this many tokens along a side.
ROPE_POSITIONS = 1024


def _int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    return value


def _positive_int(name: str, value: object) -> int:
    if _int(name, value) < 1:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def frame_count_at_most(num_frames: int) -> int:
    """The largest valid frame count ``4k + 1 <= num_frames`` (``num_frames >= 1``)."""
    _positive_int("num_frames", num_frames)
    return (num_frames - 1) // TEMPORAL_FACTOR * TEMPORAL_FACTOR + 1


def frame_count_at_least(num_frames: int) -> int:
    """The smallest valid frame count ``4k + 1 >= num_frames`` (``num_frames >= 1``): what Wan would take."""
    below = frame_count_at_most(num_frames)
    return below if below == num_frames else below + TEMPORAL_FACTOR


def check_frame_count(num_frames: int, *, minimum: int = 1) -> int:
    """``num_frames`` if it is ``4k + 1 >= minimum``; else ``ValueError`` naming the nearest valid counts."""
    if _int("num_frames", num_frames) < minimum:
        raise ValueError(f"num_frames must be at least {minimum}, got {num_frames}; use {minimum}")
    below = frame_count_at_most(num_frames)
    if below != num_frames:
        raise ValueError(
            f"num_frames must be {TEMPORAL_FACTOR}k+1 (1, 5, 9, ..., 81), got {num_frames}; "
            f"use {below} or {below + TEMPORAL_FACTOR} frames"
        )
    return num_frames


def check_multiple(name: str, value: int, multiple: int = SIZE_MULTIPLE) -> int:
    """``value`` if it is a positive multiple of ``multiple``; else ``ValueError`` naming the nearest ones."""
    if _int(name, value) < multiple:
        raise ValueError(f"{name} must be at least {multiple} pixels, got {value}; use {multiple}")
    if value % multiple:
        below = value // multiple * multiple
        raise ValueError(
            f"{name} must be a multiple of {multiple} pixels, got {value}; use {below} or {below + multiple}"
        )
    return value


def check_video_size(num_frames: int, height: int, width: int) -> None:
    """``ValueError`` naming the bound unless a ``num_frames x height x width`` video (any frame count, any size) is
    within what fastvmt takes: at most :data:`ROPE_POSITIONS` latent frames and tokens a side, at most
    :data:`MAX_FRAME_PIXELS` pixels a frame and :data:`MAX_VIDEO_PIXELS` in all.

    Called before a video is read, converted to a tensor or generated, so nothing is allocated for one beyond it.
    """
    _positive_int("num_frames", num_frames)
    _positive_int("height", height)
    _positive_int("width", width)
    frames, tall, wide = LARGEST_RELEASED_VIDEO
    max_frames = video_frame_count(ROPE_POSITIONS)
    max_side = ROPE_POSITIONS * SIZE_MULTIPLE
    if num_frames > max_frames:
        raise ValueError(f"{num_frames} frames are more than the {max_frames} fastvmt takes (the DiT's rotary "
                         f"position tables hold {ROPE_POSITIONS} latent frames, {TEMPORAL_FACTOR} video frames each)")
    if max(height, width) > max_side:
        raise ValueError(f"a frame of {width}x{height} pixels (width x height) is larger than fastvmt takes: at most "
                         f"{max_side} pixels a side (the DiT's {ROPE_POSITIONS} rotary positions of "
                         f"{SIZE_MULTIPLE} pixels)")
    if height * width > MAX_FRAME_PIXELS:
        raise ValueError(f"a {width}x{height} frame has {height * width:,} pixels; fastvmt takes at most "
                         f"{MAX_FRAME_PIXELS:,} a frame ({SIZE_FACTOR} times Wan's largest released frame, "
                         f"{wide}x{tall})")
    if num_frames * height * width > MAX_VIDEO_PIXELS:
        raise ValueError(f"{num_frames} frames of {width}x{height} are {num_frames * height * width:,} pixels; fastvmt "
                         f"takes at most {MAX_VIDEO_PIXELS:,} ({SIZE_FACTOR} times Wan's largest released video, "
                         f"{frames} frames of {wide}x{tall}): use fewer frames or a smaller size")


def _latent_frame_count(num_frames: int) -> int:
    return (num_frames - 1) // TEMPORAL_FACTOR + 1


def video_frame_count(latent_frames: int) -> int:
    """The frames ``4 (F - 1) + 1`` of a video whose latent has ``F`` frames."""
    return TEMPORAL_FACTOR * (_positive_int("latent_frames", latent_frames) - 1) + 1


def token_grid(
    num_frames: int, height: int, width: int, *, patch_size: tuple[int, int, int] = PATCH_SIZE,
    spatial_factor: int = SPATIAL_FACTOR,
) -> TokenGrid:
    """Token grid ``(F, H / 16, W / 16)`` of a video (``H / 32, W / 32`` with Wan2.2's 16x VAE: ``spatial_factor``
    16); ``ValueError`` (nearest valid values named) when unsupported or beyond :func:`check_video_size`'s bound."""
    pf, ph, pw = patch_size
    check_frame_count(num_frames)
    check_multiple("height", height, spatial_factor * ph)
    check_multiple("width", width, spatial_factor * pw)
    check_video_size(num_frames, height, width)
    frames = _latent_frame_count(num_frames)
    if frames % pf:
        raise ValueError(f"the latent's {frames} frames do not divide into temporal patches of {pf}")
    return TokenGrid(frames // pf, height // (spatial_factor * ph), width // (spatial_factor * pw))


def video_geometry(
    num_frames: int,
    height: int,
    width: int,
    *,
    latent_channels: int,
    patch_size: tuple[int, int, int] = PATCH_SIZE,
    spatial_factor: int = SPATIAL_FACTOR,
) -> VideoGeometry:
    """Latent shape ``(1, C, F, H / s, W / s)`` (``s = spatial_factor``, the VAE's: 8, or 16 for Wan2.2's) and token
    grid of a video; ``ValueError`` as :func:`token_grid`."""
    grid = token_grid(num_frames, height, width, patch_size=patch_size, spatial_factor=spatial_factor)
    return VideoGeometry(
        num_frames=num_frames,
        height=height,
        width=width,
        latent_shape=(
            1, latent_channels, _latent_frame_count(num_frames), height // spatial_factor, width // spatial_factor
        ),
        grid=grid,
    )


def token_positions(height: int, width: int, *, dtype: torch.dtype, device: torch.device) -> Real[Tensor, "s 2"]:
    """``(row, col)`` of every token of an ``height x width`` grid, raster order."""
    rows = torch.arange(height, dtype=dtype, device=device).repeat_interleave(width)
    cols = torch.arange(width, dtype=dtype, device=device).repeat(height)
    return torch.stack([rows, cols], dim=-1)
