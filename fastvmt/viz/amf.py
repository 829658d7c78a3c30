"""Pictures of an Attention Motion Flow: the consecutive-frame flow as colour images and arrow overlays.

An AMF (the ops' output, :class:`fastvmt.MotionField`) holds ``displacement (N, S, 2)``: the (d_row, d_col)
flow in tokens of every query token ``s`` (raster order, ``S = H * W``) of frame ``i`` towards frame ``j``,
for the frame pairs ``pairs (N, 2) = (i, j)``. The pictures use the pairs ``(i, i + 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, Int, UInt8
from torch import Tensor

from fastvmt.geometry import TEMPORAL_FACTOR, video_frame_count
from fastvmt.interfaces import TokenGrid
from fastvmt.viz.arrows import draw_arrows
from fastvmt.viz.colorwheel import flow_to_color

__all__ = ["FlowFrames", "amf_frames", "consecutive_flow", "frames_for_grid"]


def _numpy(array: np.ndarray | Tensor) -> np.ndarray:
    return array.detach().cpu().numpy() if isinstance(array, Tensor) else np.asarray(array)


def _grid_shape(grid: TokenGrid | tuple[int, int, int]) -> tuple[int, int, int]:
    if isinstance(grid, TokenGrid):
        return grid.frames, grid.height, grid.width
    return tuple(grid)


def consecutive_flow(
    displacement: Float[np.ndarray, "n s 2"] | Float[Tensor, "n s 2"],
    pairs: Int[np.ndarray, "n 2"] | Int[Tensor, "n 2"],
    grid: TokenGrid | tuple[int, int, int],
) -> Float[np.ndarray, "f_minus_1 h w 2"]:
    """The flow of pairs ``(i, i + 1)``, ``i = 0 .. F - 2``, as ``(F - 1, H, W, 2)`` float32 token units."""
    frames, height, width = _grid_shape(grid)
    displacement, pairs = _numpy(displacement), _numpy(pairs)
    if displacement.shape[1] != height * width:
        raise ValueError(
            f"displacement has {displacement.shape[1]} tokens a frame but the grid is {height}x{width}="
            f"{height * width}; pass the grid the AMF was computed on"
        )
    if len(pairs) != len(displacement):
        raise ValueError(f"got {len(pairs)} pairs for {len(displacement)} displacements; they must match")
    if frames < 2:
        raise ValueError(f"a grid of {frames} frame(s) has no consecutive pairs")
    row_of = {(int(i), int(j)): n for n, (i, j) in enumerate(pairs.tolist())}
    missing = [i for i in range(frames - 1) if (i, i + 1) not in row_of]
    if missing:
        raise ValueError(
            f"the AMF has no pair ({missing[0]}, {missing[0] + 1}); extract it with a temporal span of at least 2"
        )
    rows = [row_of[(i, i + 1)] for i in range(frames - 1)]
    return displacement[rows].reshape(frames - 1, height, width, 2).astype(np.float32)


def frames_for_grid(
    frames: UInt8[np.ndarray, "t H W 3"], num_latent_frames: int
) -> UInt8[np.ndarray, "f H W 3"]:
    """One video frame per latent frame: ``frames`` itself if it has ``F`` frames; from a ``4 (F - 1) + 1``
    frame video, frame ``4 i`` for latent frame ``i`` (the last frame of the group the VAE folds into it)."""
    if len(frames) == num_latent_frames:
        return frames
    expected = video_frame_count(num_latent_frames)
    if len(frames) != expected:
        raise ValueError(
            f"got {len(frames)} frames for a grid of {num_latent_frames} latent frames; give {num_latent_frames} "
            f"frames (one per latent frame) or the {expected}-frame video"
        )
    return frames[::TEMPORAL_FACTOR]


@dataclass(frozen=True)
class FlowFrames:
    """Pictures of the consecutive-frame flow, one per pair ``(i, i + 1)``.

    ``flow`` in tokens; ``colors`` on the token grid (colour wheel, shared ``max_magnitude``); ``arrows``
    drawn on frame ``i`` at its pixel size, or None when no frames were given.
    """

    flow: Float[np.ndarray, "t h w 2"]
    colors: UInt8[np.ndarray, "t h w 3"]
    arrows: UInt8[np.ndarray, "t H W 3"] | None
    max_magnitude: float


def amf_frames(
    displacement: Float[np.ndarray, "n s 2"] | Float[Tensor, "n s 2"],
    pairs: Int[np.ndarray, "n 2"] | Int[Tensor, "n 2"],
    grid: TokenGrid | tuple[int, int, int],
    *,
    frames: UInt8[np.ndarray, "t H W 3"] | None = None,
    max_magnitude: float | int | None = None,
    stride: int = 1,
    scale: float | int = 1.0,
    color: tuple[int, int, int] = (255, 255, 255),
) -> FlowFrames:
    """Colour images and (given ``frames``) arrow overlays of an AMF's consecutive-frame flow.

    ``max_magnitude`` (tokens) saturates the colours; default the largest magnitude over all pairs, so colours
    compare across time. ``frames``: one per latent frame or the whole ``4 (F - 1) + 1`` frame video (see
    :func:`frames_for_grid`); ``stride``, ``scale`` and ``color`` go to :func:`~fastvmt.viz.draw_arrows`.
    """
    flow = consecutive_flow(displacement, pairs, grid)
    if max_magnitude is None:
        max_magnitude = float(np.hypot(flow[..., 0], flow[..., 1]).max())
    colors = flow_to_color(flow, max_magnitude=max_magnitude if max_magnitude > 0 else 1.0)
    arrows = None
    if frames is not None:
        base = frames_for_grid(frames, len(flow) + 1)
        arrows = np.stack(
            [draw_arrows(base[i], flow[i], stride=stride, scale=scale, color=color) for i in range(len(flow))]
        )
    return FlowFrames(flow=flow, colors=colors, arrows=arrows, max_magnitude=float(max_magnitude))
