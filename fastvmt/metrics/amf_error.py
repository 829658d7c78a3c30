"""End-point error between two attention motion flows: how far one video's AMF is from another's, in tokens.

``EPE = mean over frame pairs n and query tokens s of || Delta_ref[n, s] - Delta_gen[n, s] ||_2``: the plain
Euclidean length of the displacement difference (not squared, unweighted), so 0 means the same flow and 1 means
one token off on average. Both fields must cover the same frame pairs on the same token grid.
"""

from __future__ import annotations

import math

import torch

from fastvmt.interfaces import MotionField

__all__ = ["amf_end_point_error"]


def amf_end_point_error(reference: MotionField, generated: MotionField) -> float:
    """Mean end-point error, in tokens, between the displacements of ``reference`` and ``generated``."""
    if reference.grid != generated.grid or reference.displacement.shape != generated.displacement.shape:
        raise ValueError(
            f"motion fields differ in size: grid {reference.grid} with displacements "
            f"{tuple(reference.displacement.shape)} vs grid {generated.grid} with "
            f"{tuple(generated.displacement.shape)}; extract both with the same extractor from videos of one size"
        )
    if not torch.equal(reference.pairs.cpu(), generated.pairs.cpu()):
        raise ValueError("motion fields cover different frame pairs; extract both with the same extractor")
    difference = reference.displacement.detach().float() - generated.displacement.detach().float().to(
        reference.displacement.device
    )
    error = float(difference.norm(dim=-1).mean())
    if not math.isfinite(error):
        raise ValueError("a motion field holds NaN or infinite displacements")
    return error
