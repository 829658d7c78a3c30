"""The pictures of a run: the reference and the output side by side, and the motion of both.

The motion picture shows the attention motion flow (AMF) the run's guidance compares, as ``fastvmt demo``'s
flow.png does: the captured block's Q/K of each video's clean latent (timestep 0, empty prompt), through the
strategy's own extractor (an unguided strategy's: the dense AMF), between consecutive latent frames. Rows:
reference arrows, reference colours, output arrows, output colours, on one colour scale.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from jaxtyping import UInt8

if TYPE_CHECKING:
    from fastvmt.generation.pipeline import MotionTransferPipeline
    from fastvmt.interfaces import MotionField

__all__ = ["FLOW_PAIRS", "flow_picture", "side_by_side_video"]

#: At most this many consecutive latent-frame pairs, evenly spaced, are pictured.
FLOW_PAIRS = 4
#: Height of each panel of the flow picture, pixels.
_PANEL_HEIGHT = 128
#: At most about this many arrows across a frame.
_ARROWS_ACROSS = 16


def side_by_side_video(
    reference: UInt8[np.ndarray, "t h w 3"], output: UInt8[np.ndarray, "t h w 3"]
) -> UInt8[np.ndarray, "t H W 3"]:
    """The reference and the output next to each other, labelled, at the output's height."""
    from fastvmt.viz import side_by_side

    return side_by_side([reference, output], ["reference", "output"], height=output.shape[1])


def _motions(pipeline: MotionTransferPipeline, latents: dict[str, torch.Tensor]) -> dict[str, MotionField]:
    """The AMF of each clean latent (the first is the reference, whose state the extractor is fitted to, as in a
    run) at the strategy's block, through its extractor (an unguided strategy's: the dense AMF)."""
    from fastvmt import plugins

    backbone = pipeline.backbone
    extractor = pipeline.components.extractor if pipeline.components else plugins.create("extractor", "dense_amf")
    with torch.no_grad():
        empty = backbone.encode_prompt("")
        block = pipeline.strategy.block
        features = {name: backbone.features(z, 0.0, empty, block=block) for name, z in latents.items()}
        state = extractor.fit(next(iter(features.values())))
        return {name: extractor.extract(f, state, reference=True) for name, f in features.items()}


def flow_picture(
    pipeline: MotionTransferPipeline, reference: UInt8[np.ndarray, "t h w 3"], output: UInt8[np.ndarray, "t h w 3"],
    output_latents: torch.Tensor,
) -> UInt8[np.ndarray, "H W 3"]:
    """The reference's and the output's AMF on ``pipeline``'s backbone (see the module docstring), at most
    :data:`FLOW_PAIRS` pairs, with the colour key at the end of each colour row."""
    from fastvmt.io.frames import frames_to_tensor
    from fastvmt.viz import amf_frames, color_wheel_legend, side_by_side, stack_rows

    backbone = pipeline.backbone
    with torch.no_grad():
        reference_latents = backbone.encode_video(frames_to_tensor(reference).to(backbone.device)).to(backbone.dtype)
    videos = {"reference": (reference, reference_latents), "output": (output, output_latents)}
    motions = _motions(pipeline, {name: latents for name, (_, latents) in videos.items()})
    largest = max(float(motion.displacement.float().norm(dim=-1).max()) for motion in motions.values())
    rows = []
    for name, (frames, _) in videos.items():
        motion = motions[name]
        stride = max(1, motion.grid.width // _ARROWS_ACROSS)
        pictures = amf_frames(motion.displacement.float(), motion.pairs, motion.grid, frames=frames,
                              max_magnitude=largest, stride=stride)
        shown = np.unique(np.linspace(0, len(pictures.colors) - 1, FLOW_PAIRS).round().astype(int))
        labels = [f"{name} {i}->{i + 1}" for i in shown]
        rows.append(side_by_side(list(pictures.arrows[shown]), labels, height=_PANEL_HEIGHT))
        rows.append(side_by_side([*pictures.colors[shown], color_wheel_legend(_PANEL_HEIGHT)],
                                 [*labels, f"key: {largest:.2g} tokens"], height=_PANEL_HEIGHT))
    return stack_rows(rows)
