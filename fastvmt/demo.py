"""The embedded demo: FastVMT end to end on a procedural clip with a tiny random-weight Wan.

It needs no weights: the reference is generated (a textured background under a camera pan and a moving
object), the backbone is the tiny Wan of :mod:`fastvmt.backbones.tiny` built from a seed. Its pictures are not
meaningful; what it shows is the whole machinery running, its timings and its gradient bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastvmt.outputs import refuse_overwrite, write_json, write_png

__all__ = ["DEMO_PROMPT", "DEMO_SIZES", "NOTICE", "DemoFiles", "DemoSize", "run_demo"]

DEMO_PROMPT = "a red ball rolls across a sunlit wooden floor while the camera pans"
NOTICE = (
    "This demo runs a tiny Wan with random weights: its output imagery is not meaningful. It shows the full "
    "FastVMT pipeline running (windowed AMF guidance, gradient reuse, CFG sampling) and times it. With real "
    "Wan2.1 weights: fastvmt transfer reference.mp4 --prompt '...' --model-dir /path/to/Wan2.1-T2V-1.3B"
)


@dataclass(frozen=True)
class DemoSize:
    """Clip and sampling size; the token grid must be divisible by FastVMT's 3x4 tiles."""

    num_frames: int
    height: int
    width: int
    steps: int
    window: int


DEMO_SIZES = {
    "default": DemoSize(num_frames=17, height=96, width=128, steps=20, window=5),  # token grid 5x6x8
    "small": DemoSize(num_frames=9, height=48, width=64, steps=5, window=3),  # token grid 3x3x4
}


@dataclass(frozen=True)
class DemoFiles:
    """What the demo writes into its output directory."""

    root: Path

    @property
    def reference(self) -> Path:
        return self.root / "reference.mp4"

    @property
    def output(self) -> Path:
        return self.root / "output.mp4"

    @property
    def flow(self) -> Path:
        return self.root / "flow.png"

    @property
    def report(self) -> Path:
        return self.root / "report.json"

    def all(self) -> list[Path]:
        return [self.reference, self.output, self.flow, self.report]


def _windowed_amf(backbone, pipe, latents):
    """The strategy's own AMF of clean ``latents`` (timestep 0, empty prompt)."""
    with torch.no_grad():
        features = backbone.features(latents, 0.0, backbone.encode_prompt(""), block=pipe.strategy.block)
        return pipe.components.extractor.extract(features, reference=True)


def _flow_picture(backbone, pipe, videos: dict[str, tuple[np.ndarray, torch.Tensor]]) -> np.ndarray:
    """For each video (name -> frames, latents): its AMF between consecutive latent frames as arrows over
    the frames and as colour-wheel images (one colour scale for all), plus the colour legend."""
    from fastvmt.viz import amf_frames, color_wheel_legend, side_by_side, stack_rows

    motions = {name: _windowed_amf(backbone, pipe, latents) for name, (_, latents) in videos.items()}
    largest = max(float(m.displacement.norm(dim=-1).max()) for m in motions.values())
    rows = []
    for name, (frames, _) in videos.items():
        motion = motions[name]
        pictures = amf_frames(motion.displacement, motion.pairs, motion.grid, frames=frames, max_magnitude=largest)
        labels = [f"{name} {i}->{i + 1}" for i in range(len(pictures.colors))]
        rows.append(side_by_side(list(pictures.arrows), labels, height=128))
        rows.append(side_by_side([*pictures.colors, color_wheel_legend(128)], [*labels, "colour key"], height=128))
    return stack_rows(rows)


def run_demo(
    out: Path, *, size: str = "default", seed: int = 0, overwrite: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Run the demo into ``out``; returns the report written as ``report.json``."""
    from fastvmt.backbones.tiny import tiny_backbone
    from fastvmt.io import write_video
    from fastvmt.io.frames import frames_to_tensor
    from fastvmt.generation.pipeline import MotionTransferPipeline
    from fastvmt.strategies.components import resolve_strategy
    from fastvmt.synthetic import moving_scene
    from fastvmt.timing import time_amf

    dims = DEMO_SIZES[size]
    files = DemoFiles(out)
    refuse_overwrite(files.all(), overwrite)
    out.mkdir(parents=True, exist_ok=True)

    reference, _ = moving_scene(dims.num_frames, dims.height, dims.width, seed=seed)
    backbone = tiny_backbone(seed=seed)
    pipe = MotionTransferPipeline(backbone, resolve_strategy("fastvmt", {"extractor.window": dims.window}))
    result = pipe(reference, DEMO_PROMPT, num_inference_steps=dims.steps, seed=seed, progress=progress)

    write_video(files.reference, reference, fps=16, overwrite=overwrite)
    write_video(files.output, result.frames, fps=16, overwrite=overwrite)
    with torch.no_grad():
        reference_latents = backbone.encode_video(frames_to_tensor(reference))
    videos = {"reference": (reference, reference_latents), "output": (result.frames, result.latents)}
    write_png(files.flow, _flow_picture(backbone, pipe, videos), overwrite=overwrite)

    timing = time_amf(repeats=1)
    report = {**result.report.to_dict(), "notice": NOTICE, "amf_timing_480x832": timing.to_dict()}
    write_json(files.report, report, overwrite=overwrite)
    return report
