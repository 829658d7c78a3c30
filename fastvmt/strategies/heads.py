"""Head reduction: from per-head Q/K to the single Q, K and logit scale that AMF uses."""

from __future__ import annotations

import math

from jaxtyping import Float
from torch import Tensor

from fastvmt.interfaces import AttentionFeatures

__all__ = ["HEAD_MODES", "reduce_heads"]

HEAD_MODES = ("mean_qk", "mean_logits")


def reduce_heads(
    features: AttentionFeatures, mode: str
) -> tuple[Float[Tensor, "f h w d"], Float[Tensor, "f h w d"], float]:
    """``(q, k, scale)`` with the logits of AMF being ``tau * scale * <q, k>``.

    ``mean_qk`` (FastVMT): q and k averaged over heads, ``scale = 1/sqrt(head_dim)``.
    ``mean_logits`` (DiTFlow): per-head logits averaged, which equals concatenating the heads with
    ``scale = 1/(heads * sqrt(head_dim))``.
    """
    heads, head_dim = features.q.shape[-2:]
    if mode == "mean_qk":
        return features.q.mean(dim=-2), features.k.mean(dim=-2), 1.0 / math.sqrt(head_dim)
    if mode == "mean_logits":
        return features.q.flatten(-2), features.k.flatten(-2), 1.0 / (heads * math.sqrt(head_dim))
    raise ValueError(f"unknown head reduction {mode!r}; choose one of {', '.join(HEAD_MODES)}")
