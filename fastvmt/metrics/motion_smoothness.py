"""VBench's motion smoothness of a video, around any frame interpolator (VBench 0.1.5, ``motion_smoothness.py``).

The even frames ``0, 2, 4, ...`` are kept; each odd frame ``2k + 1`` that has both neighbours ``2k`` and ``2k + 2``
is predicted from them (the interpolator's middle frame, in ``[0, 1]``, to uint8 by truncating ``255 x``, as
VBench's ``tensor2img`` does); the video's score is ``(255 - e) / 255``, ``e`` the mean over those frames of each
frame's mean absolute difference to the prediction (over pixels and channels, in grey levels). A video of an even
number of frames leaves its last frame out (it has no right neighbour). VBench's dimension is the mean of the
videos' scores.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from fastvmt.metrics.video import as_uint8_video

__all__ = ["MIN_FRAMES", "Interpolator", "check_frame_count", "motion_smoothness"]

#: The fewest frames with an odd frame between two even ones.
MIN_FRAMES = 3
#: ``(before, after)`` ``(B, 3, H, W)`` floats in ``[0, 1]`` to the middle frames ``(B, 3, H, W)`` in ``[0, 1]``.
Interpolator = Callable[[Tensor, Tensor], Tensor]


def check_frame_count(count: int) -> None:
    """``ValueError`` for a video of fewer than :data:`MIN_FRAMES` frames."""
    if count < MIN_FRAMES:
        raise ValueError(f"motion smoothness needs at least {MIN_FRAMES} frames (an odd frame between two even "
                         f"ones), got {count}")


def motion_smoothness(video: Any, interpolate: Interpolator, pairs_per_call: int = 1) -> float:
    """VBench's motion smoothness of ``video`` (:func:`~fastvmt.metrics.video.as_uint8_video`'s layouts): 1 when
    ``interpolate`` predicts every odd frame exactly, lower the more it misses.

    Args:
        video: the frames, ``T >= 3``.
        interpolate: the frame interpolator (VBench: AMT-S at ``t = 1/2``,
            :class:`fastvmt.metrics.amt.AmtInterpolator`).
        pairs_per_call: frame pairs given to ``interpolate`` at once (VBench gives one).
    """
    frames = torch.from_numpy(as_uint8_video(video)).permute(0, 3, 1, 2)
    check_frame_count(len(frames))
    if pairs_per_call < 1:
        raise ValueError(f"pairs_per_call must be >= 1, got {pairs_per_call}")
    kept = frames[0::2]
    targets = frames[1::2][: len(kept) - 1]
    errors = []
    for start in range(0, len(targets), pairs_per_call):
        stop = min(start + pairs_per_call, len(targets))
        before, after = kept[start:stop].float() / 255.0, kept[start + 1 : stop + 1].float() / 255.0
        predicted = interpolate(before, after).float().cpu()
        if predicted.shape != before.shape:
            raise ValueError(f"the interpolator returned shape {tuple(predicted.shape)} for frames "
                             f"{tuple(before.shape)}")
        predicted = (predicted * 255.0).clamp(0, 255).to(torch.uint8)  # truncation, as VBench's tensor2img
        difference = (predicted.short() - targets[start:stop].short()).abs().double()
        errors.extend(difference.mean(dim=(1, 2, 3)).tolist())
    return (255.0 - sum(errors) / len(errors)) / 255.0
