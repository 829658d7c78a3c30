"""Guidance losses on AMF displacements and window key means (docs/algorithm.md#losses).

All losses compute in float32 at least and return a scalar; the reference side is detached.
"""

from __future__ import annotations

import numbers

import torch
from jaxtyping import Float, Int
from torch import Tensor

from fastvmt.ops.checks import check_finite, check_span

__all__ = ["DEFAULT_ALPHA", "amf_loss", "check_alpha", "masked_mse_loss", "offset_weights", "window_loss"]

#: How much the AMF loss weight falls from offset 0 to offset ``sf - 1`` (the paper's value; the presets' too).
DEFAULT_ALPHA = 0.2


def _check_displacements(reference: Tensor, generated: Tensor) -> None:
    for name, x in (("reference", reference), ("generated", generated)):
        if not isinstance(x, Tensor) or not x.dtype.is_floating_point:
            raise TypeError(f"{name} must be a floating torch.Tensor of shape (N, S, 2)")
        if x.ndim != 3 or x.shape[-1] != 2:
            raise ValueError(f"{name} must have shape (N, S, 2) (pairs, tokens, (d_row, d_col)), got {tuple(x.shape)}")
    if reference.shape != generated.shape:
        raise ValueError(
            f"reference and generated displacements differ in shape: {tuple(reference.shape)} vs "
            f"{tuple(generated.shape)}; extract both with the same pairs and token grid"
        )
    check_finite(reference=reference, generated=generated)


def _check_pairs(pairs: Tensor, count: int) -> None:
    if not isinstance(pairs, Tensor) or pairs.dtype.is_floating_point or pairs.dtype == torch.bool:
        raise TypeError("pairs must be an integer torch.Tensor of shape (N, 2), e.g. from fastvmt.ops.frame_pairs")
    if pairs.ndim != 2 or pairs.shape[1] != 2 or pairs.shape[0] != count:
        raise ValueError(f"pairs must have shape ({count}, 2) to match the other inputs, got {tuple(pairs.shape)}")
    if pairs.numel() and int(pairs.min()) < 0:
        raise ValueError("pairs must hold frame indices >= 0")


def _work(x: Tensor) -> Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))


def check_alpha(alpha: object) -> float:
    """``alpha`` if it is a number in [0, 1], so that every offset weight stays >= 0; ``ValueError`` otherwise."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be a number in [0, 1] (weights stay >= 0), got {alpha!r}")
    return float(alpha)


def offset_weights(
    pairs: Int[Tensor, "n 2"], sf: int, alpha: float = DEFAULT_ALPHA, dtype: torch.dtype = torch.float32
) -> Float[Tensor, " n"]:
    """``w_d = 1 - alpha * d / (sf - 1)`` per pair, ``d = |j - i|`` (``w = 1`` when ``sf == 1``).

    Raises when a pair is ``sf`` or more frames apart (its weight would fall below ``1 - alpha``).
    """
    check_span(sf)
    check_alpha(alpha)
    offsets = (pairs[:, 1] - pairs[:, 0]).abs()
    if offsets.numel() and int(offsets.max()) > sf - 1:
        raise ValueError(
            f"pairs up to {int(offsets.max())} frames apart do not fit the temporal span sf={sf} "
            f"(offsets must be <= sf - 1); pass the span the pairs were made with"
        )
    if sf == 1:
        return torch.ones(pairs.shape[0], dtype=dtype, device=pairs.device)
    return 1.0 - alpha * offsets.to(dtype) / (sf - 1)


def amf_loss(
    reference: Float[Tensor, "n s 2"],
    generated: Float[Tensor, "n s 2"],
    *,
    pairs: Int[Tensor, "n 2"],
    sf: int,
    alpha: float = DEFAULT_ALPHA,
) -> Float[Tensor, ""]:
    """``(1/N) * sum_pairs w_d * sum_s ||ref[s] - gen[s]||^2`` (:func:`offset_weights`); reference detached."""
    _check_displacements(reference, generated)
    _check_pairs(pairs, generated.shape[0])
    per_pair = (_work(generated) - _work(reference).detach()).square().sum(dim=(1, 2))  # (N,)
    weights = offset_weights(pairs, sf, alpha, dtype=per_pair.dtype).to(per_pair.device)
    return (weights * per_pair).sum() / max(generated.shape[0], 1)


def masked_mse_loss(reference: Float[Tensor, "n s 2"], generated: Float[Tensor, "n s 2"]) -> Float[Tensor, ""]:
    """DiTFlow's loss: mean squared error over the tokens whose reference displacement is non-zero.

    Counted tokens: ``(n, s)`` with ``||reference[n, s]|| > 0``. The loss is the mean over both components of
    the counted tokens, ``sum_counted ||ref - gen||^2 / (2 * count)`` (= ``F.mse_loss(gen[m], ref[m])``), and
    zero (keeping the graph) when no token counts. Reference detached.
    """
    _check_displacements(reference, generated)
    ref, gen = _work(reference).detach(), _work(generated)
    counted = ref.square().sum(dim=-1) > 0  # (N, S)
    squared = (gen - ref).square().sum(dim=-1) * counted
    return squared.sum() / (2 * counted.sum().clamp(min=1))


def window_loss(key_means: Float[Tensor, "n p d"], pairs: Int[Tensor, "n 2"]) -> Float[Tensor, ""]:
    """Corresponding-window loss, in float32 at least.

    For anchor frame ``i`` with targets ``j_1 < ... < j_n`` (pairs ``(i, j)`` with ``j > i``), anchors with
    ``n >= 2`` count: ``L(i) = (1/P) sum_p (1/(n-1)) sum_t ||Kbar[i, j_{t+1}, p] - Kbar[i, j_t, p]||_2``;
    the loss is the mean of ``L(i)`` over counted anchors, zero (keeping the graph) if none counts.
    """
    if not isinstance(key_means, Tensor) or not key_means.dtype.is_floating_point or key_means.ndim != 3:
        raise TypeError("key_means must be a floating torch.Tensor of shape (N, P, D)")
    _check_pairs(pairs, key_means.shape[0])
    check_finite(key_means=key_means)
    means = _work(key_means)
    anchor, target = pairs[:, 0], pairs[:, 1]
    ahead = (target > anchor).nonzero().squeeze(1)
    span = int(pairs.max()) + 1 if pairs.numel() else 1
    order = ahead[torch.argsort(anchor[ahead] * span + target[ahead])]  # anchor-major, targets ascending
    same_anchor = anchor[order[1:]] == anchor[order[:-1]]
    if not bool(same_anchor.any()):
        return means.sum() * 0.0
    steps = (means[order[1:]] - means[order[:-1]]).norm(dim=-1).mean(dim=-1)[same_anchor]  # (steps,)
    anchors, slot, counts = torch.unique(anchor[order[1:]][same_anchor], return_inverse=True, return_counts=True)
    per_anchor = torch.zeros(anchors.shape[0], dtype=means.dtype, device=means.device).index_add_(0, slot, steps)
    return (per_anchor / counts).mean()
