"""Read clips as ``(T, H, W, 3)`` uint8 frames fitted to a target size and a 4k+1 frame count; write H.264 MP4s.

Any file ffmpeg decodes (the binary shipped with ``imageio-ffmpeg``) is read, and so is a folder of images
(PNG/JPEG/BMP/WebP, natural name order) as an image sequence. Arguments are checked before any decoding, and
the frame count is checked before frames are converted, so bad input fails fast with a :class:`VideoError`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import imageio_ffmpeg
import numpy as np
from jaxtyping import UInt8
from PIL import Image

from fastvmt.geometry import SIZE_MULTIPLE, frame_count_at_most
from fastvmt.io.checks import (
    MIN_FRAMES,
    VideoError,
    check_frame_policy,
    check_num_frames,
    check_output_path,
    check_size,
    check_video_size,
)
from fastvmt.io.transforms import plan_frames, plan_resize
from fastvmt.outputs import atomic_outputs

__all__ = ["DEFAULT_FPS", "IMAGE_SUFFIXES", "Video", "encode_video", "read_video", "write_video"]

logger = logging.getLogger(__name__)

#: The frame rate of sources without one (image sequences, some GIFs) and the default of :func:`write_video`.
DEFAULT_FPS = 16.0
#: Files of a folder read as an image sequence.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp"})


@dataclass(frozen=True)
class Video:
    """Frames ``(T, H, W, 3)`` uint8 RGB, their frame rate, and notes of what reading changed."""

    frames: UInt8[np.ndarray, "t h w 3"]
    fps: float
    notes: tuple[str, ...] = ()

    @property
    def num_frames(self) -> int:
        return self.frames.shape[0]

    @property
    def height(self) -> int:
        return self.frames.shape[1]

    @property
    def width(self) -> int:
        return self.frames.shape[2]


def ffmpeg_executable() -> str:
    """Path of the ffmpeg binary used for reading and writing."""
    return imageio_ffmpeg.get_ffmpeg_exe()


def _ffmpeg_reason(output: str) -> str:
    """One line of an ffmpeg log saying what went wrong: the last that names an error (else the last line),
    without its ``[component @ 0x...]`` prefixes; never the banner, and ffmpeg's closing "Conversion failed!" only
    when the log has nothing else."""
    every = [re.sub(r"^(\[[^\]]*\]\s*)+", "", line.strip()) for line in output.splitlines()]
    every = [line for line in every if line]
    lines = [line for line in every if line != "Conversion failed!"
             and not line.startswith(("Terminating thread", "Task finished"))]
    errors = [line for line in lines if re.search(r"error|invalid|no such|not found|unsupported", line, re.I)]
    return (errors or lines or every or ["no message from ffmpeg"])[-1]


def _natural_key(path: Path) -> list[object]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _image_files(folder: Path) -> list[Path]:
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
    if not files:
        raise VideoError(f"folder {str(folder)!r} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def _count_frames(path: Path) -> int:
    if path.is_dir():
        return len(_image_files(path))
    try:
        count, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    except RuntimeError as error:
        raise VideoError(f"cannot read {str(path)!r} as a video: {_ffmpeg_reason(str(error))}") from None
    return count


@dataclass(frozen=True)
class _Stream:
    size: tuple[int, int]  # (H, W)
    fps: float | None
    frames: Iterator[np.ndarray]


@contextlib.contextmanager
def _image(file: Path) -> Iterator[Image.Image]:
    """``file`` opened with PIL; a file PIL cannot read (corrupt, truncated, not an image, a decompression bomb)
    is a :class:`VideoError` naming it."""
    try:
        with Image.open(file) as image:
            yield image
    except VideoError:
        raise
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise VideoError(f"cannot read image {str(file)!r}: {error}") from None


def _image_stream(folder: Path) -> _Stream:
    files = _image_files(folder)
    with _image(files[0]) as first:
        size = (first.height, first.width)

    def frames() -> Iterator[np.ndarray]:
        for file in files:
            with _image(file) as image:
                if (image.height, image.width) != size:
                    raise VideoError(
                        f"image {file.name!r} is {image.width}x{image.height}, not {size[1]}x{size[0]} like "
                        f"{files[0].name!r}; an image sequence needs one size"
                    )
                yield np.asarray(image.convert("RGB"), dtype=np.uint8)

    return _Stream(size, None, frames())


@contextlib.contextmanager
def _open_stream(path: Path) -> Iterator[_Stream]:
    """Frames of ``path`` one at a time; ffmpeg is stopped on exit even if not all frames were read."""
    if path.is_dir():
        yield _image_stream(path)
        return
    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    try:
        try:
            meta = next(reader)
        except (OSError, RuntimeError) as error:
            raise VideoError(f"cannot read {str(path)!r} as a video: {_ffmpeg_reason(str(error))}") from None
        width, height = meta["size"]
        fps = float(meta.get("fps") or 0.0)

        def frames() -> Iterator[np.ndarray]:
            try:
                for data in reader:
                    yield np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)
            except RuntimeError as error:
                raise VideoError(f"cannot decode {str(path)!r}: {_ffmpeg_reason(str(error))}") from None

        yield _Stream((height, width), fps if math.isfinite(fps) and fps > 0 else None, frames())
    finally:
        reader.close()


def read_video(
    path: str | os.PathLike[str],
    *,
    num_frames: int | Literal["all"] | None = None,
    height: int | None = None,
    width: int | None = None,
    frame_policy: str = "trim",
) -> Video:
    """Read a clip, centre-crop it to the ``height x width`` aspect ratio, resize it and fit its frame count.

    Args:
        path: a video file (anything ffmpeg decodes, GIF included) or a folder of images.
        num_frames: target count, 4k+1 >= 5; default the largest 4k+1 the clip has; ``"all"`` keeps every
            frame as decoded (no 4k+1 fitting, no minimum: for metrics and viewing; ``frame_policy`` unused).
        height, width: target size, multiples of 16; both None keeps the source size, one None follows the
            source aspect ratio.
        frame_policy: ``"trim"`` keeps the first frames (the clip must be long enough); ``"resample"`` picks
            evenly spaced frames, repeating frames if the clip is shorter, and scales fps to keep the duration.

    Returns:
        :class:`Video` with ``frames (T, H, W, 3)`` uint8, ``fps`` (16 when the source has none), and
        ``notes`` saying what was cropped, resized, trimmed or resampled.

    Raises:
        VideoError: missing or unreadable file, fewer than 5 frames unless "all" (or than ``num_frames`` with trim),
            a size that is not a multiple of 16 or a count that is not 4k+1 (the nearest valid ones named).
    """
    check_frame_policy(frame_policy)
    every_frame = num_frames == "all"
    if num_frames is not None and not every_frame:
        check_num_frames(num_frames)
    if height is not None:
        check_size("height", height)
    if width is not None:
        check_size("width", width)
    if isinstance(num_frames, int):  # the bound on what is known before opening the file (an unknown side: 16)
        check_video_size(num_frames, height or SIZE_MULTIPLE, width or SIZE_MULTIPLE)
    path = Path(path)
    if not path.exists():
        raise VideoError(f"video not found: {str(path)!r}")

    total = _count_frames(path)
    minimum = 1 if every_frame else MIN_FRAMES
    if total < minimum:
        raise VideoError(f"{str(path)!r} has {total} frame(s); a clip needs at least {minimum}")
    if frame_policy == "trim" and isinstance(num_frames, int) and total < num_frames:
        raise VideoError(
            f"{str(path)!r} has {total} frames, fewer than num_frames={num_frames}; ask for at most "
            f"{frame_count_at_most(total)} frames or use frame_policy='resample' to repeat frames"
        )
    frame_plan = plan_frames(total, num_frames, frame_policy)

    with _open_stream(path) as stream:
        resize = plan_resize(stream.size, height, width)
        check_video_size(len(frame_plan.indices), *resize.size)  # before a frame is decoded
        wanted = set(frame_plan.indices.tolist())
        last = max(wanted)
        kept: dict[int, np.ndarray] = {}
        decoded = 0
        for index, frame in enumerate(stream.frames):
            decoded = index + 1
            if index in wanted:
                kept[index] = resize.apply(frame)
            if index == last:
                break
    if last not in kept:
        raise VideoError(
            f"{str(path)!r}: decoded only {decoded} of the {total} frames ffmpeg counted; the file may be damaged"
        )

    notes = list(resize.notes) + list(frame_plan.notes)
    fps = stream.fps
    if fps is None:
        fps = DEFAULT_FPS
        notes.append(f"the source has no frame rate; using {DEFAULT_FPS:g} fps")
    for note in notes:
        logger.debug("%s: %s", path, note)
    frames = np.stack([kept[i] for i in frame_plan.indices.tolist()])
    return Video(frames=frames, fps=fps * frame_plan.fps_factor, notes=tuple(notes))


def _even_sized(frames: np.ndarray) -> np.ndarray:
    """Frames padded by one replicated row / column where a size is odd (yuv420p needs even sizes)."""
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        logger.info("padding %dx%d frames to even sizes for yuv420p", frames.shape[2], frames.shape[1])
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return np.ascontiguousarray(frames)


def encode_video(
    path: str | os.PathLike[str],
    frames: UInt8[np.ndarray, "t h w 3"],
    *,
    fps: float | int = DEFAULT_FPS,
    crf: int = 18,
) -> Path:
    """Encode ``frames`` into the file ``path`` as it is, replacing it: the step :func:`write_video` runs on its
    temporary file, and what a group of outputs written together (:func:`fastvmt.outputs.atomic_outputs`) runs.

    Raises:
        TypeError: frames are not a uint8 ``(T, H, W, 3)`` array.
        VideoError: empty frames, bad fps or crf.
        OSError: ffmpeg failed.
    """
    path = Path(path)
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise TypeError("frames must be a uint8 numpy array (T, H, W, 3) of RGB")
    if 0 in frames.shape:
        raise VideoError(f"frames must not be empty, got shape {frames.shape}")
    if not (math.isfinite(fps) and fps > 0):
        raise VideoError(f"fps must be a positive number, got {fps}")
    if not 0 <= crf <= 51:
        raise VideoError(f"crf must be in 0..51, got {crf}")
    frames = _even_sized(frames)
    _, height, width, _ = frames.shape
    rate = Fraction(fps).limit_denominator(1001)
    command = [
        ffmpeg_executable(), "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", f"{rate.numerator}/{rate.denominator}",
        "-i", "-", "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", str(crf),
        "-movflags", "+faststart", "-f", "mp4", str(path),
    ]  # fmt: skip
    result = subprocess.run(command, input=frames.tobytes(), capture_output=True, check=False)
    if result.returncode != 0:
        raise OSError(f"ffmpeg could not write {str(path)!r}: {_ffmpeg_reason(result.stderr.decode(errors='replace'))}")
    return path


def write_video(
    path: str | os.PathLike[str],
    frames: UInt8[np.ndarray, "t h w 3"],
    *,
    fps: float | int = DEFAULT_FPS,
    overwrite: bool = False,
    crf: int = 18,
) -> Path:
    """Write ``frames (T, H, W, 3)`` uint8 RGB as an H.264 (libx264, yuv420p) MP4 and return its path.

    The video is encoded to a hidden temporary file in the same folder, then renamed
    (:func:`fastvmt.outputs.atomic_outputs`), so ``path`` is never left half-written. Odd sizes are padded by one
    replicated pixel row/column (yuv420p needs even sizes). ``crf`` is x264's constant rate factor (0 lossless
    ... 51 worst; 18 is visually near-lossless).

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false (checked before encoding, and again
            before the rename).
        TypeError: frames are not a uint8 ``(T, H, W, 3)`` array.
        VideoError: not an .mp4 path, missing folder, empty frames, bad fps or crf.
        OSError: ffmpeg failed.
    """
    path = check_output_path(path, overwrite=overwrite)
    with atomic_outputs([path], overwrite=overwrite) as (temporary,):
        encode_video(temporary, frames, fps=fps, crf=crf)
    return path
