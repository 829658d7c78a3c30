"""Draw the figures of docs/concepts.md with fastvmt itself: a procedural clip, patch features, the AMF ops.

    python docs/make_figures.py [--out docs/figures]

No model weights: the clip is :func:`fastvmt.synthetic.moving_scene` (a panning background under a moving
disc, ground-truth motion known) and the attention features are its own pixel patches
(:func:`fastvmt.patch_features.patch_features`), whose AMF is a block-matching flow. Every number drawn comes
from the public ops (:mod:`fastvmt.ops`) and the registered gradient schedulers; :mod:`fastvmt.viz` draws
the flows. The PNGs are quantised to a palette to stay small.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from fastvmt import ops
from fastvmt.interfaces import InnerStep
from fastvmt.patch_features import PATCH, PATCH_TAU, patch_features
from fastvmt.synthetic import moving_scene
from fastvmt.viz import amf_frames, color_wheel_legend, flow_to_color, side_by_side

#: File names, in the order the figures appear in docs/concepts.md.
FIGURES = ("amf.png", "windows.png", "window-loss.png", "step-skipping.png")

FRAMES, HEIGHT, WIDTH = 13, 192, 256  # 4 latent frames of a 12 x 16 token grid
# Pixels a video frame: whole tokens (16 px) per latent frame (4 video frames), which 16 px patches can match.
PAN, VELOCITY, RADIUS = (0.0, 4.0), (4.0, -4.0), 40
TILE, WINDOW = (3, 4), 7
PANEL_HEIGHT = 192
COLORS = ((255, 64, 64), (64, 160, 255))  # one per highlighted tile


@dataclass(frozen=True)
class Scene:
    """The clip, one frame per latent frame, the features' Q/K ``(F, H, W, D)`` and the ground truth."""

    frames: np.ndarray
    q: torch.Tensor
    k: torch.Tensor
    truth: np.ndarray  # (H, W, 2) token displacement from latent frame 0 to 1
    disc_token: tuple[int, int]  # the token under the disc's centre in frame 0


def make_scene(seed: int = 0) -> Scene:
    video, motion = moving_scene(
        FRAMES, HEIGHT, WIDTH, seed=seed, pan=PAN, object_velocity=VELOCITY, object_radius=RADIUS
    )
    features = patch_features(video)
    q, k = features.q[..., 0, :], features.k[..., 0, :]  # one head
    # Ground truth of latent frames 0 -> 1 (video frames 0 -> 4), averaged over each 16x16 token, in tokens.
    pixels = motion.flow(0) * 4 / PATCH
    truth = pixels.reshape(HEIGHT // PATCH, PATCH, WIDTH // PATCH, PATCH, 2).mean(axis=(1, 3))
    disc = tuple(int(c) // PATCH for c in motion.object_centers[0])
    return Scene(video[::4], q, k, truth, disc)


def _font(size: int = 13) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _token_box(row: int, col: int, rows: int, cols: int, scale: float) -> tuple[float, float, float, float]:
    """Pixel rectangle (x0, y0, x1, y1) of ``rows x cols`` tokens from token ``(row, col)``."""
    return (col * scale, row * scale, (col + cols) * scale - 1, (row + rows) * scale - 1)


def _dot(draw: ImageDraw.ImageDraw, row: float, col: float, scale: float, color, radius: int = 4) -> None:
    y, x = (row + 0.5) * scale, (col + 0.5) * scale
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=color, outline=(0, 0, 0))


def figure_amf(scene: Scene) -> np.ndarray:
    """Frame 0 with the windowed AMF's arrows; dense and windowed AMF colours; the ground truth; the key."""
    dense = ops.full_amf(scene.q, scene.k, sf=2, tau=PATCH_TAU)
    windowed = ops.windowed_amf(scene.q, scene.k, sf=2, tile=TILE, window=WINDOW, tau=PATCH_TAU)
    pairs = ops.frame_pairs(len(scene.frames), 2)
    grid = tuple(scene.q.shape[:3])
    largest = float(np.hypot(*np.moveaxis(scene.truth, -1, 0)).max()) * 1.5
    dense_pictures = amf_frames(dense, pairs, grid, max_magnitude=largest)
    windowed_pictures = amf_frames(
        windowed.displacement, pairs, grid, frames=scene.frames, max_magnitude=largest
    )
    panels = [
        windowed_pictures.arrows[0],
        dense_pictures.colors[0],
        windowed_pictures.colors[0],
        flow_to_color(scene.truth, max_magnitude=largest),
        color_wheel_legend(96),
    ]
    labels = ["frame 0, windowed AMF arrows", "dense AMF 0->1", f"windowed AMF (l={WINDOW})", "ground truth",
              "colour key"]  # fmt: skip
    return side_by_side(panels, labels, height=PANEL_HEIGHT, font_size=13)


def _highlighted_tiles(scene: Scene) -> list[int]:
    """Two tiles to draw (raster index): the one under the disc's centre in frame 0, and a background tile."""
    tiles_per_row = scene.q.shape[2] // TILE[1]
    on_disc = (scene.disc_token[0] // TILE[0]) * tiles_per_row + scene.disc_token[1] // TILE[1]
    return [on_disc, (scene.q.shape[1] // TILE[0] - 1) * tiles_per_row]


def figure_windows(scene: Scene) -> np.ndarray:
    """Frame i with two tiles and their representative queries; frame j with the coarse matches and windows."""
    pairs = ops.frame_pairs(len(scene.frames), 2)
    starts = ops.window_starts(scene.q, scene.k, sf=2, tile=TILE, window=WINDOW, tau=PATCH_TAU)
    pair = int(((pairs[:, 0] == 0) & (pairs[:, 1] == 1)).nonzero())
    scale = HEIGHT / scene.q.shape[1]
    tiles_per_row = scene.q.shape[2] // TILE[1]
    query_frame, key_frame = Image.fromarray(scene.frames[0]), Image.fromarray(scene.frames[1])
    draw_i, draw_j = ImageDraw.Draw(query_frame), ImageDraw.Draw(key_frame)
    coarse = ops.full_amf(scene.q, scene.k, sf=2, tau=PATCH_TAU)[pair]  # displacements of every query
    for color, tile in zip(COLORS, _highlighted_tiles(scene)):
        a, b = divmod(tile, tiles_per_row)
        rep = (a * TILE[0] + TILE[0] // 2, b * TILE[1] + TILE[1] // 2)
        draw_i.rectangle(_token_box(a * TILE[0], b * TILE[1], *TILE, scale), outline=color, width=3)
        _dot(draw_i, *rep, scale, color)
        match = coarse[rep[0] * scene.q.shape[2] + rep[1]] + torch.tensor(rep, dtype=coarse.dtype)
        _dot(draw_j, float(match[0]), float(match[1]), scale, color)
        row, col = starts[pair, tile].tolist()
        draw_j.rectangle(_token_box(row, col, WINDOW, WINDOW, scale), outline=color, width=3)
    labels = ["frame i: tiles, representative queries", f"frame j: coarse matches, {WINDOW}x{WINDOW} windows"]
    return side_by_side([np.asarray(query_frame), np.asarray(key_frame)], labels, height=PANEL_HEIGHT, font_size=13)


def figure_window_loss(scene: Scene) -> np.ndarray:
    """Anchor frame 0's disc tile and its windows in the later frames of its span (sf = 4)."""
    sf = 4
    result = ops.windowed_amf(scene.q, scene.k, sf=sf, tile=TILE, window=WINDOW, tau=PATCH_TAU)
    scale = HEIGHT / scene.q.shape[1]
    tile = _highlighted_tiles(scene)[0]
    a, b = divmod(tile, scene.q.shape[2] // TILE[1])
    panels, labels = [], []
    anchor = Image.fromarray(scene.frames[0])
    ImageDraw.Draw(anchor).rectangle(_token_box(a * TILE[0], b * TILE[1], *TILE, scale), outline=COLORS[0], width=3)
    panels.append(np.asarray(anchor))
    labels.append("anchor i = 0: tile p")
    for n, (i, j) in enumerate(result.pairs.tolist()):
        if i != 0 or j == 0:
            continue
        frame = Image.fromarray(scene.frames[j])
        row, col = result.starts[n, tile].tolist()
        ImageDraw.Draw(frame).rectangle(_token_box(row, col, WINDOW, WINDOW, scale), outline=COLORS[0], width=3)
        panels.append(np.asarray(frame))
        labels.append(f"j = {j}: window, mean key Kbar")
    return side_by_side(panels, labels, height=150, font_size=12)


def figure_step_skipping() -> np.ndarray:
    """Which inner iterations compute a gradient (dark) or reuse the cached one (light), per scheduler."""
    from fastvmt import plugins

    rows = [("every (DiTFlow)", "every", {}), ("interval(3) (FastVMT)", "interval", {"every": 3}),
            ("warmup_interval(2, 4)", "warmup_interval", {"warmup": 2, "every": 4})]  # fmt: skip
    iterations, cell, label_width, top = 10, 30, 190, 26
    image = Image.new("RGB", (label_width + iterations * cell + 90, top + len(rows) * cell + 4), "white")
    draw = ImageDraw.Draw(image)
    font = _font()
    for j in range(iterations):
        draw.text((label_width + j * cell + cell / 2, top / 2), f"j={j}", fill="black", font=font, anchor="mm")
    draw.text((label_width + iterations * cell + 45, top / 2), "computed", fill="black", font=font, anchor="mm")
    for r, (label, name, options) in enumerate(rows):
        scheduler = plugins.get("scheduler", name)(**options)
        y = top + r * cell
        draw.text((6, y + cell / 2), label, fill="black", font=font, anchor="lm")
        computed = 0
        for j in range(iterations):
            fresh = scheduler.should_compute(InnerStep(0, 50, inner=j, num_inner=iterations))
            computed += fresh
            x = label_width + j * cell
            draw.rectangle((x + 2, y + 2, x + cell - 3, y + cell - 3), fill=(40, 90, 170) if fresh else (205, 220, 240))
        draw.text((label_width + iterations * cell + 45, y + cell / 2), f"{computed}/{iterations}", fill="black",
                  font=font, anchor="mm")  # fmt: skip
    return np.asarray(image)


def save(picture: np.ndarray, path: Path) -> None:
    """A palette PNG (at most 128 colours): the figures stay a few tens of kilobytes."""
    image = Image.fromarray(picture).quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    image.save(path, optimize=True)


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "figures", help="output folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    scene = make_scene()
    pictures = (figure_amf(scene), figure_windows(scene), figure_window_loss(scene), figure_step_skipping())
    written = []
    for name, picture in zip(FIGURES, pictures):
        save(picture, args.out / name)
        written.append(args.out / name)
    return written


if __name__ == "__main__":
    for path in main():
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
