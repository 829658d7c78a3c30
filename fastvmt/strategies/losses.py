"""Guidance losses (docs/algorithm.md#losses): FastVMT's AMF + corresponding-window loss, DiTFlow's masked MSE."""

from __future__ import annotations

import torch

from fastvmt import ops
from fastvmt.interfaces import GuidanceLoss, LossValue, MotionField
from fastvmt.strategies.presets import FASTVMT
from fastvmt.values import check_real

__all__ = ["AMFWindowLoss", "MaskedMSELoss"]


def _check_same_pairs(reference: MotionField, generated: MotionField) -> None:
    if (
        reference.displacement.shape != generated.displacement.shape
        or reference.pairs.shape != generated.pairs.shape
        or not torch.equal(reference.pairs.to(generated.pairs.device), generated.pairs)
    ):
        raise ValueError("reference and generated motion must cover the same frame pairs (same extractor settings)")


class AMFWindowLoss(GuidanceLoss):
    """``lambda_amf * L_amf + lambda_win * L_win``; the window term needs a windowed extractor. The defaults are
    the ``fastvmt`` preset's.

    Subclasses change the motion term by overriding :meth:`amf_term` (and ``amf_part``, its name in the loss
    parts); the pair check and the window term stay shared.
    """

    amf_part = "amf"

    def __init__(
        self,
        lambda_amf: float = FASTVMT.loss.options["lambda_amf"],
        lambda_win: float = FASTVMT.loss.options["lambda_win"],
        alpha: float = FASTVMT.loss.options["alpha"],
    ):
        self.lambda_amf = check_real("lambda_amf", lambda_amf, low=0.0)
        self.lambda_win = check_real("lambda_win", lambda_win, low=0.0)
        self.alpha = ops.losses.check_alpha(alpha)

    def amf_term(self, reference: MotionField, generated: MotionField) -> torch.Tensor:
        """The motion term ``L_amf`` (docs/algorithm.md#amf-loss): offset-weighted squared displacement error."""
        return ops.amf_loss(
            reference.displacement, generated.displacement, pairs=generated.pairs, sf=generated.span, alpha=self.alpha
        )

    def __call__(self, reference: MotionField, generated: MotionField) -> LossValue:
        _check_same_pairs(reference, generated)
        amf = self.amf_term(reference, generated)
        total = self.lambda_amf * amf
        parts = {self.amf_part: amf.item()}
        if self.lambda_win:
            if generated.key_means is None:
                raise ValueError("the window loss needs window key means: use a windowed extractor or lambda_win=0")
            window = ops.window_loss(generated.key_means, generated.pairs)
            total = total + self.lambda_win * window
            parts["window"] = window.item()
        return LossValue(total, parts)


class MaskedMSELoss(GuidanceLoss):
    """DiTFlow's loss: squared error of the displacements where the reference moves (``||Delta_ref|| > 0``)."""

    def __call__(self, reference: MotionField, generated: MotionField) -> LossValue:
        _check_same_pairs(reference, generated)
        loss = ops.masked_mse_loss(reference.displacement, generated.displacement)
        return LossValue(loss, {"masked_mse": loss.item()})
