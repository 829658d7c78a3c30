"""The pictures of a run: the reference and the output side by side, and the motion of both.

The flow picture is what ``fastvmt flow`` shows without weights: each video's own 16x16 patches matched between
consecutive latent frames (a block-matching AMF), so it pictures the motion one sees in each video, whatever
the model. Rows: reference arrows, reference colours, output arrows, output colours, on one colour scale.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import UInt8

__all__ = ["FLOW_PAIRS", "flow_picture", "side_by_side_video"]

#: At most this many consecutive latent-frame pairs, evenly spaced, are pictured.
FLOW_PAIRS = 4
#: Height of each panel of the flow picture, pixels.
_PANEL_HEIGHT = 128


def side_by_side_video(
    reference: UInt8[np.ndarray, "t h w 3"], output: UInt8[np.ndarray, "t h w 3"]
) -> UInt8[np.ndarray, "t H W 3"]:
    """The reference and the output next to each other, labelled, at the output's height."""
    from fastvmt.viz import side_by_side

    return side_by_side([reference, output], ["reference", "output"], height=output.shape[1])


def _patch_motion(frames: np.ndarray):
    from fastvmt.patch_features import PATCH_TAU, patch_features
    from fastvmt.strategies.extractors import DenseAMFExtractor

    return DenseAMFExtractor(sf=2, tau=PATCH_TAU).extract(patch_features(frames), reference=True)


def flow_picture(videos: dict[str, UInt8[np.ndarray, "t h w 3"]]) -> UInt8[np.ndarray, "H W 3"]:
    """For each named video, its consecutive-frame motion as arrows over its frames and as colour-wheel images
    (one colour scale for all videos), at most :data:`FLOW_PAIRS` pairs, with the colour key at the end."""
    from fastvmt.viz import amf_frames, color_wheel_legend, side_by_side

    motions = {name: _patch_motion(frames) for name, frames in videos.items()}
    largest = max(float(motion.displacement.norm(dim=-1).max()) for motion in motions.values())
    rows = []
    for name, frames in videos.items():
        motion = motions[name]
        pictures = amf_frames(motion.displacement, motion.pairs, motion.grid, frames=frames, max_magnitude=largest)
        shown = np.unique(np.linspace(0, len(pictures.colors) - 1, FLOW_PAIRS).round().astype(int))
        labels = [f"{name} {i}->{i + 1}" for i in shown]
        rows.append(side_by_side(list(pictures.arrows[shown]), labels, height=_PANEL_HEIGHT))
        rows.append(side_by_side([*pictures.colors[shown], color_wheel_legend(_PANEL_HEIGHT)],
                                 [*labels, f"key: {largest:.2g} tokens"], height=_PANEL_HEIGHT))
    width = max(row.shape[1] for row in rows)
    return np.concatenate([np.pad(row, ((0, 0), (0, width - row.shape[1]), (0, 0))) for row in rows], axis=0)
