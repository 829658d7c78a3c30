"""Argument checks for video I/O, each failing with one line that names the problem and the fix.

Wan takes ``T = 4k + 1`` frames at sizes that are multiples of 16 pixels (VAE /8, then 2 x 2 patches); a clip
needs at least 5 frames (two latent frames) to have any motion.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "FRAME_POLICIES",
    "MIN_FRAMES",
    "SIZE_MULTIPLE",
    "VideoError",
    "check_frame_policy",
    "check_num_frames",
    "check_output_path",
    "check_size",
    "largest_valid_frame_count",
]

#: Heights and widths must be multiples of this many pixels.
SIZE_MULTIPLE = 16
#: The shortest clip read_video returns (4 * 1 + 1).
MIN_FRAMES = 5
#: How read_video brings a clip to its target frame count.
FRAME_POLICIES = ("trim", "resample")


class VideoError(ValueError):
    """A video that cannot be used as asked: missing, unreadable, too short, or a bad size / frame count."""


def _require_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    return value


def check_size(name: str, value: int) -> int:
    """``value`` if it is a positive multiple of 16; else :class:`VideoError` naming the nearest valid sizes."""
    _require_int(name, value)
    if value < SIZE_MULTIPLE:
        raise VideoError(f"{name} must be at least {SIZE_MULTIPLE} pixels, got {value}; use {SIZE_MULTIPLE}")
    if value % SIZE_MULTIPLE:
        below = value // SIZE_MULTIPLE * SIZE_MULTIPLE
        raise VideoError(
            f"{name} must be a multiple of {SIZE_MULTIPLE} pixels, got {value}; use {below} or {below + SIZE_MULTIPLE}"
        )
    return value


def check_num_frames(num_frames: int) -> int:
    """``num_frames`` if it is ``4k + 1 >= 5``; else :class:`VideoError` naming the nearest valid counts."""
    _require_int("num_frames", num_frames)
    if num_frames < MIN_FRAMES:
        raise VideoError(f"num_frames must be at least {MIN_FRAMES}, got {num_frames}; use {MIN_FRAMES}")
    if (num_frames - 1) % 4:
        below = largest_valid_frame_count(num_frames)
        raise VideoError(f"num_frames must be 4k+1 (5, 9, ..., 81), got {num_frames}; use {below} or {below + 4}")
    return num_frames


def check_frame_policy(frame_policy: str) -> str:
    """``frame_policy`` if it is one of :data:`FRAME_POLICIES`; else :class:`VideoError` listing them."""
    if frame_policy not in FRAME_POLICIES:
        raise VideoError(f"frame_policy must be one of {', '.join(FRAME_POLICIES)}; got {frame_policy!r}")
    return frame_policy


def largest_valid_frame_count(num_frames: int) -> int:
    """The largest ``4k + 1 <= num_frames`` (``num_frames >= 1``)."""
    return (num_frames - 1) // 4 * 4 + 1


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
