"""Argument checks for video I/O, each failing with one line that names the problem and the fix.

The frame-count and size rules are :mod:`fastvmt.geometry`'s (4k+1 frames, multiples of 16 pixels), raised here
as :class:`VideoError`; io's own rule is that a clip needs at least 5 frames (two latent frames) to have any motion.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from fastvmt.geometry import check_frame_count, check_multiple
from fastvmt.geometry import check_video_size as _check_video_size

__all__ = [
    "FRAME_POLICIES",
    "MIN_FRAMES",
    "VideoError",
    "check_frame_policy",
    "check_num_frames",
    "check_output_path",
    "check_size",
    "check_video_size",
]

_T = TypeVar("_T")

#: The shortest clip read_video fits to Wan's frame counts (4 * 1 + 1).
MIN_FRAMES = 5
#: How read_video brings a clip to its target frame count.
FRAME_POLICIES = ("trim", "resample")


class VideoError(ValueError):
    """A video that cannot be used as asked: missing, unreadable, too short, or a bad size / frame count."""


def _as_video_error(check: Callable[..., _T], *args: object, **kwargs: object) -> _T:
    """``check(*args, **kwargs)`` with its ``ValueError`` raised as :class:`VideoError` (``TypeError`` as is)."""
    try:
        return check(*args, **kwargs)
    except ValueError as error:
        raise VideoError(str(error)) from None


def check_size(name: str, value: int) -> int:
    """``value`` if it is a positive multiple of 16; else :class:`VideoError` naming the nearest valid sizes."""
    return _as_video_error(check_multiple, name, value)


def check_num_frames(num_frames: int) -> int:
    """``num_frames`` if it is ``4k + 1 >= 5``; else :class:`VideoError` naming the nearest valid counts."""
    return _as_video_error(check_frame_count, num_frames, minimum=MIN_FRAMES)


def check_video_size(num_frames: int, height: int, width: int) -> None:
    """:func:`fastvmt.geometry.check_video_size`'s bound on a video's frames and pixels, as :class:`VideoError`."""
    _as_video_error(_check_video_size, num_frames, height, width)


def check_frame_policy(frame_policy: str) -> str:
    """``frame_policy`` if it is one of :data:`FRAME_POLICIES`; else :class:`VideoError` listing them."""
    if frame_policy not in FRAME_POLICIES:
        raise VideoError(f"frame_policy must be one of {', '.join(FRAME_POLICIES)}; got {frame_policy!r}")
    return frame_policy


def check_output_path(path: str | Path, *, overwrite: bool = False) -> Path:
    """The output path of an MP4, checked before any work: ``.mp4`` suffix, existing folder, no clobbering.

    Raises ``FileExistsError`` when the file exists and ``overwrite`` is false, ``VideoError`` otherwise.
    """
    path = Path(path)
    if path.suffix.lower() != ".mp4":
        raise VideoError(f"output video must be an .mp4 file, got {str(path)!r}; name it {path.stem}.mp4")
    if not path.parent.is_dir():
        raise VideoError(f"output folder {str(path.parent)!r} does not exist; create it first")
    if path.is_dir():
        raise VideoError(f"output path {str(path)!r} is a folder; give a file name ending in .mp4")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{str(path)!r} already exists; pass --overwrite (overwrite=True) to replace it")
    return path
