"""Arrows of a token-grid flow drawn over a video frame (PIL drawing, no OpenCV)."""

from __future__ import annotations

import math

import numpy as np
from jaxtyping import Float, UInt8
from PIL import Image, ImageDraw

__all__ = ["draw_arrows"]

#: Half-angle between an arrow's shaft and each stroke of its head.
_HEAD_ANGLE = math.radians(25)


def draw_arrows(
    frame: UInt8[np.ndarray, "H W 3"],
    flow: Float[np.ndarray, "h w 2"],
    *,
    stride: int = 1,
    scale: float | int = 1.0,
    color: tuple[int, int, int] = (255, 255, 255),
    width: int = 1,
    min_length: float | int = 0.5,
) -> UInt8[np.ndarray, "H W 3"]:
    """A copy of ``frame`` with one arrow per ``stride``-th token of ``flow``.

    ``flow[r, c] = (d_row, d_col)`` is in token units; token ``(r, c)`` covers frame pixels
    ``[r * H/h, (r+1) * H/h) x [c * W/w, (c+1) * W/w)``, so an arrow starts at the token's centre and ends
    ``scale * flow`` tokens away, converted to pixels by ``(H/h, W/w)``. Arrows shorter than ``min_length``
    pixels are drawn as a dot.
    """
    flow = np.asarray(flow, dtype=np.float64)
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be a positive int, got {stride!r}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    if not np.isfinite(flow).all():
        raise ValueError("flow holds NaN or infinite values")
    frame_h, frame_w = frame.shape[:2]
    grid_h, grid_w = flow.shape[:2]
    cell_h, cell_w = frame_h / grid_h, frame_w / grid_w
    image = Image.fromarray(np.ascontiguousarray(frame))
    draw = ImageDraw.Draw(image)
    for r in range(stride // 2, grid_h, stride):
        for c in range(stride // 2, grid_w, stride):
            y0, x0 = (r + 0.5) * cell_h - 0.5, (c + 0.5) * cell_w - 0.5
            dy, dx = scale * flow[r, c, 0] * cell_h, scale * flow[r, c, 1] * cell_w
            length = math.hypot(dy, dx)
            if length < min_length:
                draw.point((x0, y0), fill=color)
                continue
            y1, x1 = y0 + dy, x0 + dx
            draw.line([(x0, y0), (x1, y1)], fill=color, width=width)
            head = min(0.35 * length, max(2.0, 0.3 * min(cell_h, cell_w) * stride))
            back = math.atan2(-dy, -dx)
            for side in (-_HEAD_ANGLE, _HEAD_ANGLE):
                tip = (x1 + head * math.cos(back + side), y1 + head * math.sin(back + side))
                draw.line([(x1, y1), tip], fill=color, width=width)
    return np.asarray(image, dtype=np.uint8)
