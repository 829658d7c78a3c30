"""Images or videos placed side by side, each under a text label; images stacked in rows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from jaxtyping import UInt8
from PIL import Image, ImageDraw, ImageFont

__all__ = ["side_by_side", "stack_rows"]


def _resize(panel: np.ndarray, height: int) -> np.ndarray:
    """``panel (T, h, w, 3)`` scaled to ``height`` keeping its aspect ratio: nearest-neighbour when enlarging
    (token-grid images stay crisp), Lanczos when shrinking."""
    h, w = panel.shape[1:3]
    if h == height:
        return panel
    width = max(1, round(w * height / h))
    method = Image.Resampling.NEAREST if height > h else Image.Resampling.LANCZOS
    return np.stack([np.asarray(Image.fromarray(f).resize((width, height), method)) for f in panel])


def _label_strip(text: str, width: int, font_size: int) -> np.ndarray:
    """A black ``(strip_height, width, 3)`` strip with ``text`` centred in white."""
    pad = max(2, font_size // 4)
    height = font_size + 2 * pad
    height += height % 2
    image = Image.new("RGB", (width, height), (0, 0, 0))
    font = ImageFont.load_default(size=font_size)
    draw = ImageDraw.Draw(image)
    left, _, right, _ = draw.textbbox((0, 0), text, font=font)
    draw.text(((width - (right - left)) / 2, height / 2), text, fill=(255, 255, 255), font=font, anchor="lm")
    return np.asarray(image, dtype=np.uint8)


def side_by_side(
    panels: Sequence[UInt8[np.ndarray, "..."]],
    labels: Sequence[str] | None = None,
    *,
    height: int | None = None,
    gap: int = 4,
    font_size: int | None = None,
) -> UInt8[np.ndarray, "..."]:
    """Panels ``(H, W, 3)`` images or ``(T, H, W, 3)`` videos joined left to right, ``gap`` black pixels apart.

    Every panel is scaled to ``height`` (default: the tallest panel's). Videos must have the same frame
    count; images are repeated over it. With ``labels`` (one per panel), a strip with the label sits above
    each panel. Returns an image if every panel is an image, else a video.
    """
    if not panels:
        raise ValueError("side_by_side needs at least one panel")
    if labels is not None and len(labels) != len(panels):
        raise ValueError(f"got {len(labels)} labels for {len(panels)} panels; give one label per panel")
    for index, panel in enumerate(panels):
        if panel.dtype != np.uint8 or panel.ndim not in (3, 4) or panel.shape[-1] != 3:
            raise ValueError(
                f"panel {index} must be a uint8 (H, W, 3) image or (T, H, W, 3) video, got {panel.dtype} {panel.shape}"
            )
    lengths = {panel.shape[0] for panel in panels if panel.ndim == 4}
    if len(lengths) > 1:
        raise ValueError(f"video panels have different frame counts {sorted(lengths)}; give them one length")
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap}")
    is_video = bool(lengths)
    num_frames = lengths.pop() if is_video else 1
    videos = [panel if panel.ndim == 4 else panel[None] for panel in panels]
    height = height or max(video.shape[1] for video in videos)
    font_size = font_size or max(10, height // 20)

    columns = []
    for index, video in enumerate(videos):
        column = _resize(video, height)
        if labels is not None:
            strip = _label_strip(labels[index], column.shape[2], font_size)
            column = np.concatenate([np.broadcast_to(strip, (len(column), *strip.shape)), column], axis=1)
        column = np.broadcast_to(column, (num_frames, *column.shape[1:]))
        if columns and gap:
            columns.append(np.zeros((num_frames, column.shape[1], gap, 3), np.uint8))
        columns.append(column)
    joined = np.concatenate(columns, axis=2)
    return joined if is_video else joined[0]


def stack_rows(rows: Sequence[np.ndarray]) -> np.ndarray:
    """(H, W, 3) images one under the other, left-aligned, each padded with black on the right to the widest."""
    width = max(row.shape[1] for row in rows)
    return np.concatenate([np.pad(row, ((0, 0), (0, width - row.shape[1]), (0, 0))) for row in rows], axis=0)
