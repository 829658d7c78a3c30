"""Optical-flow colour coding of Baker et al. (Middlebury, IJCV 2011): hue = direction, saturation = magnitude.

Convention: a flow vector is ``(d_row, d_col)``, rows pointing down and columns right (image coordinates), the
order of fastvmt's AMF displacements. Magnitudes are divided by ``max_magnitude``: zero is white, 1 is the
fully saturated wheel colour, beyond 1 the colour is darkened to 75 %. The wheel interpolates 55 colours
along red, yellow, green, cyan, blue, magenta as the direction turns clockwise on screen: rightward flow is
red, downward yellow, leftward cyan-blue, upward violet (as in the Middlebury legend).
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float, UInt8

__all__ = ["color_wheel", "color_wheel_legend", "flow_to_color"]

#: Colour steps between the primary and secondary hues, as in the Middlebury code (55 colours in all).
_SEGMENTS = (("red", "yellow", 15), ("yellow", "green", 6), ("green", "cyan", 4), ("cyan", "blue", 11),
             ("blue", "magenta", 13), ("magenta", "red", 6))  # fmt: skip
_RGB = {"red": (1, 0, 0), "yellow": (1, 1, 0), "green": (0, 1, 0), "cyan": (0, 1, 1), "blue": (0, 0, 1),
        "magenta": (1, 0, 1)}  # fmt: skip


def color_wheel() -> Float[np.ndarray, "n 3"]:
    """The wheel's colours in ``[0, 1]``, red first, each segment blended linearly from one hue to the next."""
    rows = []
    for start, end, steps in _SEGMENTS:
        t = np.arange(steps)[:, None] / steps
        rows.append((1 - t) * np.array(_RGB[start], float) + t * np.array(_RGB[end], float))
    return np.concatenate(rows)


def flow_to_color(
    flow: Float[np.ndarray, "*batch 2"], max_magnitude: float | int | None = None
) -> UInt8[np.ndarray, "*batch 3"]:
    """RGB uint8 colours of ``flow (..., 2)`` = (d_row, d_col).

    ``max_magnitude`` is the magnitude drawn fully saturated; default the largest finite magnitude in
    ``flow`` (so a still field is all white). Non-finite vectors are drawn black.
    """
    flow = np.asarray(flow, dtype=np.float64)
    if max_magnitude is not None and not max_magnitude > 0:
        raise ValueError(f"max_magnitude must be positive, got {max_magnitude}")
    d_row, d_col = flow[..., 0], flow[..., 1]
    finite = np.isfinite(d_row) & np.isfinite(d_col)
    d_row, d_col = np.where(finite, d_row, 0.0), np.where(finite, d_col, 0.0)
    magnitude = np.hypot(d_row, d_col)
    if max_magnitude is None:
        max_magnitude = float(magnitude.max(initial=0.0))
    radius = magnitude / max(max_magnitude, np.finfo(np.float64).tiny)

    wheel = color_wheel()
    count = len(wheel)
    # Screen angle (rows point down, so it grows clockwise): rightward flow is red (index 0), downward ~13.75.
    position = (np.arctan2(d_row, d_col) % (2 * np.pi)) / (2 * np.pi) * count
    low = np.floor(position).astype(np.int64) % count
    high = (low + 1) % count
    frac = (position - np.floor(position))[..., None]
    color = (1 - frac) * wheel[low] + frac * wheel[high]

    inside = (radius <= 1)[..., None]
    color = np.where(inside, 1 - radius[..., None] * (1 - color), 0.75 * color)
    color = np.where(finite[..., None], color, 0.0)
    return np.floor(255 * np.clip(color, 0, 1)).astype(np.uint8)


def color_wheel_legend(size: int = 128) -> UInt8[np.ndarray, "size size 3"]:
    """A ``size x size`` legend: the disc of flows pointing from its centre, saturated at the rim, on white."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 2:
        raise ValueError(f"size must be an int >= 2, got {size!r}")
    centre = (size - 1) / 2
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    flow = np.stack([rows - centre, cols - centre], axis=-1)
    legend = flow_to_color(flow, max_magnitude=centre)
    outside = np.hypot(flow[..., 0], flow[..., 1]) > centre
    legend[outside] = 255
    return legend
