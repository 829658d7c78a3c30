"""A procedural test clip with known motion: a textured background panning under a textured disc.

The background is smooth colour noise (octaves of bicubically enlarged random grids, values in
``[0.1, 0.65] * 255``), shifted each frame by ``pan`` pixels with **bilinear sampling** (sub-pixel shifts are
exact translations of the sampled texture, so ``frame[t + k]`` equals ``frame[t]`` moved by ``k * pan``
wherever ``k * pan`` is a whole number of pixels). The object is an antialiased disc with its own bright
texture (values in ``[0.8, 1.0] * 255``) that moves rigidly by ``object_velocity`` pixels a frame along a
path centred on the frame centre. Displacements are ``(d_row, d_col)`` in pixels per frame, rows down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, UInt8
from PIL import Image

__all__ = ["SceneMotion", "moving_scene"]

_BACKGROUND_RANGE = (0.1, 0.65)
_OBJECT_RANGE = (0.8, 1.0)


@dataclass(frozen=True)
class SceneMotion:
    """Ground truth of a :func:`moving_scene` clip (pixels; ``(row, col)`` with pixel ``(i, j)`` at ``(i, j)``)."""

    pan: tuple[float, float]
    object_velocity: tuple[float, float]
    object_centers: Float[np.ndarray, "t 2"]
    object_radius: float
    size: tuple[int, int]

    def object_mask(self, t: int) -> Float[np.ndarray, "h w"]:
        """Coverage in ``[0, 1]`` of each pixel of frame ``t`` by the disc (1 inside, antialiased rim)."""
        height, width = self.size
        rows, cols = np.mgrid[0:height, 0:width]
        distance = np.hypot(rows - self.object_centers[t, 0], cols - self.object_centers[t, 1])
        return np.clip(self.object_radius + 0.5 - distance, 0.0, 1.0)

    def flow(self, t: int) -> Float[np.ndarray, "h w 2"]:
        """Displacement ``(H, W, 2)`` of each pixel of frame ``t`` to frame ``t + 1``: the object's velocity
        where the disc covers at least half the pixel, the pan elsewhere."""
        height, width = self.size
        flow = np.broadcast_to(np.asarray(self.pan, np.float64), (height, width, 2)).copy()
        flow[self.object_mask(t) >= 0.5] = self.object_velocity
        return flow


def _smooth_texture(rng: np.random.Generator, height: int, width: int, feature_size: float) -> np.ndarray:
    """``(height, width, 3)`` smooth colour noise in ``[0, 1]``: three octaves of enlarged random grids."""
    texture = np.zeros((height, width, 3))
    for octave, weight in enumerate((1.0, 0.5, 0.25)):
        cell = max(feature_size / 2**octave, 1.0)
        grid_h, grid_w = math.ceil(height / cell) + 2, math.ceil(width / cell) + 2
        noise = rng.random((3, grid_h, grid_w), dtype=np.float32)
        for channel in range(3):
            big = Image.fromarray(noise[channel], mode="F").resize(
                (round(grid_w * cell), round(grid_h * cell)), Image.Resampling.BICUBIC
            )
            texture[..., channel] += weight * np.asarray(big)[:height, :width]
    low, high = texture.min(axis=(0, 1)), texture.max(axis=(0, 1))
    return (texture - low) / np.maximum(high - low, 1e-12)


def _shifted(texture: np.ndarray, top: float, left: float, height: int, width: int) -> np.ndarray:
    """``texture`` sampled bilinearly at ``(top + i, left + j)``, ``i < height``, ``j < width`` (in bounds)."""
    row, col = math.floor(top), math.floor(left)
    fy, fx = top - row, left - col
    window = texture[row : row + height + 1, col : col + width + 1]
    rows = (1 - fy) * window[:-1] + fy * window[1:]
    return (1 - fx) * rows[:, :-1] + fx * rows[:, 1:]


def _check_inside(centers: np.ndarray, radius: float, height: int, width: int, velocity, steps: int) -> None:
    for axis, size in ((0, height), (1, width)):
        if centers[:, axis].min() < radius or centers[:, axis].max() > size - 1 - radius:
            limit = max(size - 1 - 2 * radius, 0) / max(steps, 1)
            raise ValueError(
                f"the object (radius {radius:g}) leaves the {width}x{height} frame: object_velocity "
                f"{tuple(velocity)} moves it {abs(velocity[axis]) * steps:g} pixels along axis {axis} in "
                f"{steps + 1} frames; keep |velocity[{axis}]| <= {limit:.3g} or use fewer frames / a smaller object"
            )


def moving_scene(
    num_frames: int = 17,
    height: int = 96,
    width: int = 128,
    *,
    seed: int = 0,
    pan: tuple[float | int, float | int] = (0.0, 1.5),
    object_velocity: tuple[float | int, float | int] = (1.0, 2.5),
    object_radius: float | int | None = None,
    feature_size: float | int = 12.0,
) -> tuple[UInt8[np.ndarray, "t h w 3"], SceneMotion]:
    """A ``(T, H, W, 3)`` uint8 clip of a panning background and a moving disc, and its :class:`SceneMotion`.

    Args:
        pan: displacement of the background in the image, pixels a frame ``(d_row, d_col)``.
        object_velocity: displacement of the disc in the image, pixels a frame (not relative to the pan).
        object_radius: disc radius in pixels; default ``min(H, W) / 6``. The disc must stay whole in the
            frame over the clip (``ValueError`` otherwise).
        feature_size: size in pixels of the coarsest texture blobs.
    Same arguments, same clip: every random draw comes from ``numpy.random.default_rng(seed)``.
    """
    if num_frames < 2 or height < 16 or width < 16:
        raise ValueError(f"need num_frames >= 2 and a frame of at least 16x16, got {num_frames} x {width}x{height}")
    if not feature_size >= 1:
        raise ValueError(f"feature_size must be at least 1 pixel, got {feature_size}")
    radius = min(height, width) / 6 if object_radius is None else float(object_radius)
    if not radius > 0:
        raise ValueError(f"object_radius must be positive, got {object_radius}")
    steps = num_frames - 1
    times = np.arange(num_frames, dtype=np.float64)[:, None]
    velocity = np.asarray(object_velocity, np.float64)
    centers = np.array([(height - 1) / 2, (width - 1) / 2]) + (times - steps / 2) * velocity
    _check_inside(centers, radius, height, width, object_velocity, steps)

    rng = np.random.default_rng(seed)
    travel = np.abs(np.asarray(pan, np.float64)) * steps
    canvas = _smooth_texture(
        rng, height + math.ceil(travel[0]) + 2, width + math.ceil(travel[1]) + 2, float(feature_size)
    )
    background_low, background_high = _BACKGROUND_RANGE
    canvas = background_low + (background_high - background_low) * canvas
    side = 2 * math.ceil(radius) + 8  # the disc's texture, centred on the disc's centre
    object_texture = _smooth_texture(rng, side + 1, side + 1, max(radius / 2, 1.0))
    object_low, object_high = _OBJECT_RANGE
    object_texture = object_low + (object_high - object_low) * object_texture

    motion = SceneMotion((float(pan[0]), float(pan[1])), (float(velocity[0]), float(velocity[1])), centers, radius,
                         (height, width))  # fmt: skip
    # Frame t shows canvas point (i - pan * t + origin): content moves by +pan a frame.
    origin = np.where(np.asarray(pan) > 0, travel, 0.0)
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        shift = origin - np.asarray(pan, np.float64) * t
        image = _shifted(canvas, shift[0], shift[1], height, width)
        # The disc's box: pixels within radius + 1 of its centre; its texture point is (pixel - center + side/2).
        r0, c0 = (int(max(math.floor(centers[t, a] - radius - 1), 0)) for a in (0, 1))
        r1, c1 = (int(min(math.ceil(centers[t, a] + radius + 1), (height, width)[a] - 1)) + 1 for a in (0, 1))
        patch = _shifted(object_texture, r0 - centers[t, 0] + side / 2, c0 - centers[t, 1] + side / 2, r1 - r0, c1 - c0)
        alpha = motion.object_mask(t)[r0:r1, c0:c1, None]
        image[r0:r1, c0:c1] = alpha * patch + (1 - alpha) * image[r0:r1, c0:c1]
        frames[t] = np.round(255 * image).astype(np.uint8)
    return frames, motion
