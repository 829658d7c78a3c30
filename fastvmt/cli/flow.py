"""``fastvmt flow``: look at a video's attention motion flow, with or without model weights."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from fastvmt.cli.app import app
from fastvmt.cli.errors import user_errors
from fastvmt.outputs import atomic_outputs, encode_png, refuse_inputs, refuse_overwrite

OUTPUTS = ("colors.mp4", "arrows.mp4", "panel.png")


def _tile(text: str) -> tuple[int, int]:
    rows, sep, cols = text.lower().partition("x")
    if not sep or not rows.isdigit() or not cols.isdigit():
        raise ValueError(f"--tile takes ROWSxCOLS, e.g. 3x4, got {text!r}")
    return int(rows), int(cols)


@app.command()
@user_errors
def flow(
    reference: Path = typer.Argument(..., help="Video to analyse (any ffmpeg-readable file)."),
    out: Path = typer.Option(Path("fastvmt-flow"), "--out", "-o", help="Folder for colors.mp4, arrows.mp4, panel.png."),
    model_dir: Optional[Path] = typer.Option(
        None,
        "--model-dir",
        help="Wan2.1 checkpoint: use the Q/K of the presets' captured block. Default: the video's own patches.",
    ),
    frames: Optional[int] = typer.Option(None, help="Frames to read, 4k+1. [default: the most the video has]"),
    height: int = typer.Option(288, help="Height the video is cropped and resized to, a multiple of 16."),
    width: int = typer.Option(512, help="Width the video is cropped and resized to, a multiple of 16."),
    dense: bool = typer.Option(False, help="Dense AMF over whole frames instead of FastVMT's windows."),
    tile: str = typer.Option("3x4", help="Windowed AMF tile, ROWSxCOLS tokens."),
    window: int = typer.Option(21, help="Windowed AMF window side, tokens (odd)."),
    tau: Optional[float] = typer.Option(
        None, help="AMF temperature (multiplies the logits). [default: 1000 for patches, 1 for a model]"
    ),
    overwrite: bool = typer.Option(False, help="Replace existing files."),
) -> None:
    """Visualise the attention motion flow (AMF) between consecutive latent frames of a video.

    Without --model-dir the features are the video's own 16x16 pixel patches (pooled to 4x4, centred,
    normalised): a block-matching flow that needs no weights. With --model-dir they are the DiT's Q and K.
    """
    from fastvmt.patch_features import PATCH_TAU
    from fastvmt.strategies.extractors import DenseAMFExtractor, WindowedAMFExtractor

    if tau is None:
        tau = PATCH_TAU if model_dir is None else 1.0
    extractor = DenseAMFExtractor(sf=2, tau=tau) if dense else WindowedAMFExtractor(
        sf=2, tile=_tile(tile), window=window, tau=tau
    )
    refuse_inputs([out / name for name in OUTPUTS], [("reference", reference)])
    refuse_overwrite([out / name for name in OUTPUTS], overwrite)
    if model_dir is not None and not model_dir.is_dir():
        raise NotADirectoryError(f"model directory {model_dir} does not exist")

    from fastvmt.io import read_video

    video = read_video(reference, num_frames=frames, height=height, width=width)
    for note in video.notes:
        typer.echo(f"note: {note}", err=True)
    features = _features(video.frames, model_dir)
    extractor.check(features.grid)
    motion = extractor.extract(features, reference=True)
    _write_pictures(out, video, motion, overwrite)
    typer.echo(f"wrote {', '.join(str(out / name) for name in OUTPUTS)}")


def _features(frames, model_dir: Path | None):
    if model_dir is None:
        from fastvmt.patch_features import patch_features

        return patch_features(frames)
    import torch

    from fastvmt.backbones.wan import WanBackbone
    from fastvmt.io.frames import frames_to_tensor
    from fastvmt.strategies.presets import CAPTURED_BLOCK

    backbone = WanBackbone.from_pretrained(model_dir)
    backbone.geometry(*frames.shape[:3])
    with torch.no_grad():
        latents = backbone.encode_video(frames_to_tensor(frames).to(backbone.device)).to(backbone.dtype)
        return backbone.features(latents, 0.0, backbone.encode_prompt(""), block=CAPTURED_BLOCK)


def _write_pictures(out: Path, video, motion, overwrite: bool) -> None:
    """The three pictures, written as one group: all of them or none."""
    from fastvmt.geometry import TEMPORAL_FACTOR
    from fastvmt.io.video import encode_video
    from fastvmt.viz import amf_frames, color_wheel_legend, frames_for_grid, side_by_side

    pictures = amf_frames(motion.displacement, motion.pairs, motion.grid, frames=video.frames)
    size = video.frames.shape[1]
    colors = side_by_side([pictures.colors], height=size)
    latent_fps = video.fps / TEMPORAL_FACTOR
    first = frames_for_grid(video.frames, motion.grid.frames)[0]
    panel = side_by_side(
        [first, pictures.arrows[0], pictures.colors[0], color_wheel_legend(128)],
        ["frame 0", "flow 0->1", f"colour (max {pictures.max_magnitude:.2f} tokens)", "colour key"],
        height=size,
    )
    out.mkdir(parents=True, exist_ok=True)
    with atomic_outputs([out / name for name in OUTPUTS], overwrite=overwrite) as (colors_mp4, arrows_mp4, panel_png):
        encode_video(colors_mp4, colors, fps=latent_fps)
        encode_video(arrows_mp4, pictures.arrows, fps=latent_fps)
        encode_png(panel_png, panel)
