"""Plans that bring a clip to a target size and frame count, with a human-readable note for each change.

Sizes in notes read ``width x height`` (the video convention); arrays are ``(T, H, W, 3)`` uint8 RGB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from jaxtyping import Int, UInt8
from PIL import Image

from fastvmt.geometry import SIZE_MULTIPLE, frame_count_at_most

__all__ = ["FramePlan", "ResizePlan", "plan_frames", "plan_resize"]


@dataclass(frozen=True)
class ResizePlan:
    """Centre crop (``box`` = left, top, right, bottom in source pixels, or None) then resize to ``size``.

    The crop is whole pixels, so no cropped-away pixel leaks into the resampling filter at the edges."""

    source_size: tuple[int, int]
    size: tuple[int, int]
    box: tuple[int, int, int, int] | None
    notes: tuple[str, ...]

    def apply(self, frame: UInt8[np.ndarray, "h w 3"]) -> UInt8[np.ndarray, "H W 3"]:
        """The frame cropped and resized (Lanczos, antialiased when shrinking)."""
        if self.box is None and self.size == self.source_size:
            return frame
        height, width = self.size
        image = Image.fromarray(frame)
        if self.box is not None:
            image = image.crop(self.box)
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.LANCZOS)
        return np.asarray(image, dtype=np.uint8)


def _derived_size(given: int, ratio: float) -> int:
    return max(SIZE_MULTIPLE, round(given * ratio / SIZE_MULTIPLE) * SIZE_MULTIPLE)


def plan_resize(source_size: tuple[int, int], height: int | None, width: int | None) -> ResizePlan:
    """How to fit frames of ``source_size`` = (H, W) to ``height x width``.

    Both None keeps the source size. One None is derived from the source aspect ratio, rounded to a multiple
    of 16. Otherwise the largest centred window of the target aspect ratio is cropped, then resized.
    """
    src_h, src_w = source_size
    notes: list[str] = []
    if height is None and width is None:
        return ResizePlan(source_size, source_size, None, ())
    if height is None:
        height = _derived_size(width, src_h / src_w)
        notes.append(f"height {height} derived from width {width} and the source aspect ratio")
    elif width is None:
        width = _derived_size(height, src_w / src_h)
        notes.append(f"width {width} derived from height {height} and the source aspect ratio")
    crop_w, crop_h = src_w, src_h
    if src_w * height > width * src_h:  # source wider than the target
        crop_w = max(1, round(src_h * width / height))
    elif src_w * height < width * src_h:  # source taller than the target
        crop_h = max(1, round(src_w * height / width))
    box = None
    if (crop_w, crop_h) != (src_w, src_h):
        left, top = (src_w - crop_w) // 2, (src_h - crop_h) // 2
        box = (left, top, left + crop_w, top + crop_h)
        notes.append(f"centre-cropped {src_w}x{src_h} to {crop_w}x{crop_h} for the {width}x{height} aspect ratio")
    if (crop_w, crop_h) != (width, height):
        notes.append(f"resized {crop_w}x{crop_h} to {width}x{height} (Lanczos)")
    return ResizePlan(source_size, (height, width), box, tuple(notes))


@dataclass(frozen=True)
class FramePlan:
    """Which source frames make the clip (``indices``, repeats allowed) and the fps factor that keeps the
    clip's duration (1 when trimming)."""

    indices: Int[np.ndarray, " t"]
    fps_factor: float
    notes: tuple[str, ...]


def plan_frames(total: int, num_frames: int | Literal["all"] | None, policy: str) -> FramePlan:
    """Indices bringing ``total`` source frames to ``num_frames`` (None: the largest 4k+1 <= total; "all": every
    frame, unchanged).

    ``trim`` keeps the first frames (needs ``total >= num_frames``); ``resample`` picks evenly spaced frames
    over the whole clip, repeating frames when there are too few, and scales the fps to keep the duration.
    Counts are assumed checked (``total >= 5`` and ``num_frames`` 4k+1, unless "all").
    """
    if num_frames == "all":
        return FramePlan(np.arange(total), 1.0, ())
    target = frame_count_at_most(total) if num_frames is None else num_frames
    if target == total:
        return FramePlan(np.arange(total), 1.0, ())
    if policy == "trim":
        if total < target:
            raise ValueError(f"cannot trim {total} frames to {target}")
        note = f"trimmed from {total} to {target} frames (kept the first {target})"
        return FramePlan(np.arange(target), 1.0, (note,))
    indices = np.round(np.linspace(0, total - 1, target)).astype(np.int64)
    how = "evenly spaced frames" if target < total else "repeating evenly spaced frames"
    note = f"resampled from {total} to {target} frames ({how}); fps scaled by {target / total:.4g} to keep the duration"
    return FramePlan(indices, target / total, (note,))
