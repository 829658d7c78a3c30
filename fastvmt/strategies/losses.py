"""Guidance losses (docs/algorithm.md#losses): FastVMT's AMF + corresponding-window loss, DiTFlow's masked MSE,
FlowMotion's latent alignment + frame-difference loss, and the sum of FastVMT's and FlowMotion's."""

from __future__ import annotations

import torch

from fastvmt import ops
from fastvmt.interfaces import GuidanceLoss, HybridMotion, LatentMotion, LossValue, MotionField
from fastvmt.strategies.flowmotion import frame_difference_mse
from fastvmt.strategies.presets import FASTVMT, FLOWMOTION
from fastvmt.values import check_real

__all__ = ["AMFWindowAlignmentLoss", "AMFWindowLoss", "LatentAlignmentLoss", "MaskedMSELoss"]


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


class LatentAlignmentLoss(GuidanceLoss):
    """FlowMotion's loss (docs/algorithm.md#flowmotion): ``lambda_align * MSE(x0_ref, x0_gen) + lambda_diff *
    MSE(D(x0_ref), D(x0_gen))`` on predicted clean latents, ``D`` their frame differences. The defaults are the
    ``flowmotion`` preset's."""

    def __init__(
        self,
        lambda_align: float = FLOWMOTION.loss.options["lambda_align"],
        lambda_diff: float = FLOWMOTION.loss.options["lambda_diff"],
    ):
        self.lambda_align = check_real("lambda_align", lambda_align, low=0.0)
        self.lambda_diff = check_real("lambda_diff", lambda_diff, low=0.0)

    def __call__(self, reference: LatentMotion, generated: LatentMotion) -> LossValue:
        if reference.clean.shape != generated.clean.shape:
            raise ValueError(f"reference and generated latents differ in shape: {tuple(reference.clean.shape)} and "
                             f"{tuple(generated.clean.shape)}")
        target = reference.clean.detach()
        alignment = (generated.clean - target).square().mean()
        difference = frame_difference_mse(target, generated.clean)
        total = self.lambda_align * alignment + self.lambda_diff * difference
        return LossValue(total, {"alignment": alignment.item(), "frame_difference": difference.item()})


class AMFWindowAlignmentLoss(GuidanceLoss):
    """FastVMT's AMF + window loss on the attention motion plus FlowMotion's loss on the predicted latent, each with
    its own weights (the ``fastvmt_flowmotion`` preset's by default)."""

    def __init__(
        self,
        lambda_amf: float = FASTVMT.loss.options["lambda_amf"],
        lambda_win: float = FASTVMT.loss.options["lambda_win"],
        alpha: float = FASTVMT.loss.options["alpha"],
        lambda_align: float = FLOWMOTION.loss.options["lambda_align"],
        lambda_diff: float = FLOWMOTION.loss.options["lambda_diff"],
    ):
        self.amf = AMFWindowLoss(lambda_amf, lambda_win, alpha)
        self.latent = LatentAlignmentLoss(lambda_align, lambda_diff)

    def __call__(self, reference: HybridMotion, generated: HybridMotion) -> LossValue:
        amf = self.amf(reference.amf, generated.amf)
        latent = self.latent(reference.latent, generated.latent)
        return LossValue(amf.total + latent.total, {**amf.parts, **latent.parts})
