"""A robust AMF loss: FastVMT's loss with a Charbonnier penalty per token instead of the squared error.

The squared error pulls every token towards the reference's displacement with a force that grows with the
error, so a few tokens where the reference's AMF is wrong (occlusions, flat texture, a mismatched window)
can dominate the gradient. The Charbonnier penalty ``rho(e) = sqrt(||e||^2 + eps^2) - eps`` is quadratic for
errors much smaller than ``eps`` and grows linearly beyond: each token's pull is bounded (its gradient has a
norm below 1), so outliers weigh no more than any other moving token.
"""

from __future__ import annotations

import torch

from fastvmt import ops
from fastvmt.interfaces import MotionField
from fastvmt.strategies.losses import AMFWindowLoss

__all__ = ["CharbonnierAMFLoss"]


class CharbonnierAMFLoss(AMFWindowLoss):
    """``lambda_amf * L_charb + lambda_win * L_win`` with a robust per-token penalty.

    ``L_charb = (1/N) sum_pairs w_d sum_s (sqrt(||ref[s] - gen[s]||^2 + eps^2) - eps)``, with FastVMT's
    offset weights ``w_d = 1 - alpha * d / (sf - 1)`` and the reference detached; ``L_win`` is FastVMT's
    corresponding-window loss (it needs a windowed extractor; ``lambda_win=0`` drops it). Loss parts:
    ``charbonnier`` and ``window``. Only the motion term differs from FastVMT's loss, so this subclasses it.

    Args:
        epsilon: displacement error (tokens) where the penalty turns from quadratic to linear.
        lambda_amf, lambda_win: weights of the two terms.
        alpha: how much less pairs far apart in time count.
    """

    amf_part = "charbonnier"

    def __init__(self, epsilon: float = 0.1, lambda_amf: float = 5.0, lambda_win: float = 1.0, alpha: float = 0.2):
        if not epsilon > 0:
            raise ValueError(f"epsilon must be > 0 (tokens), got {epsilon}")
        super().__init__(lambda_amf, lambda_win, alpha)
        self.epsilon = epsilon

    def amf_term(self, reference: MotionField, generated: MotionField) -> torch.Tensor:
        """The robust AMF term ``L_charb`` (a scalar, float32 at least)."""
        work = torch.promote_types(generated.displacement.dtype, torch.float32)
        error = generated.displacement.to(work) - reference.displacement.to(work).detach()
        penalty = (error.square().sum(dim=-1) + self.epsilon**2).sqrt() - self.epsilon  # (N, S)
        weights = ops.offset_weights(generated.pairs, generated.span, self.alpha, dtype=work)
        return (weights.to(penalty.device) * penalty.sum(dim=1)).sum() / max(penalty.shape[0], 1)
