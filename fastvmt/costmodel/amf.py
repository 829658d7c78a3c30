"""FLOPs of the Attention Motion Flow ops (docs/algorithm.md#amf-cost), by formula.

Matrix products only, ``2 * m * n * k`` each, as ``FlopCounterMode`` counts them; the expectation over key
positions is a product with the ``(keys, 2)`` position matrix. Per frame pair, with ``S`` tokens a frame and
feature width ``D``:

- dense, soft: logits ``2*S*S*D`` + expected position ``2*S*S*2``; its backward ``2*S*S*2`` (to the
  attention weights) + ``2 * 2*S*S*D`` (to Q and K);
- dense, argmax (DiTFlow's reference): the logits only;
- windowed (``P`` tiles, windows of ``E`` keys): coarse pass ``2*P*S*(D+2)`` without gradient, fine pass
  ``2*S*E*(D+2)``, window key means ``P*E*D`` additions; its backward covers the fine pass
  (``2*S*E*2 + 2 * 2*S*E*D``) and the key means.

Head reduction sets ``D``: ``mean_qk`` averages Q and K over heads (``D = head_dim``); ``mean_logits`` averages
the logits, which is one product over the concatenated heads (``D = heads * head_dim``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fastvmt.costmodel.wan import TokenCounts, WanConfig

__all__ = ["AMFConfig", "AMFFlops", "amf_flops", "pair_count"]


@dataclass(frozen=True)
class AMFConfig:
    """What an extractor computes: dense or windowed AMF over a set of frame pairs."""

    kind: Literal["dense", "windowed"]
    pairs: Literal["forward", "all"] = "forward"
    span: int = 4
    heads: Literal["mean_qk", "mean_logits"] = "mean_qk"
    reference_argmax: bool = False
    tile: tuple[int, int] = (3, 4)
    window: int = 21

    def __post_init__(self) -> None:
        if self.kind not in ("dense", "windowed"):
            raise ValueError(f"AMF kind must be 'dense' or 'windowed', got {self.kind!r}")
        if self.pairs not in ("forward", "all"):
            raise ValueError(f"pairs must be 'forward' or 'all', got {self.pairs!r}")
        if self.heads not in ("mean_qk", "mean_logits"):
            raise ValueError(f"heads must be 'mean_qk' or 'mean_logits', got {self.heads!r}")
        if self.span < 1 or self.window < 1 or min(self.tile) < 1:
            raise ValueError("span, window and tile sizes must be >= 1")
        if self.reference_argmax and self.kind != "dense":
            raise ValueError("argmax reference displacement is a dense-AMF option")

    def width(self, config: WanConfig) -> int:
        """Feature width ``D`` of the logits products."""
        return config.head_dim if self.heads == "mean_qk" else config.heads * config.head_dim


def pair_count(frames: int, pairs: str, span: int) -> int:
    """``N``: ``forward`` pairs ``i <= j < i + span`` (F=21, span 4: 78) or ``all`` ordered pairs (``F*F``)."""
    if pairs == "all":
        return frames * frames
    return sum(min(span, frames - i) for i in range(frames))


@dataclass(frozen=True)
class AMFFlops:
    """FLOPs of one motion extraction: the reference (no gradient), the generated forward and its backward."""

    reference: int
    forward: int
    backward: int


def amf_flops(amf: AMFConfig, config: WanConfig, grid: TokenCounts) -> AMFFlops:
    """FLOPs of one AMF extraction over all pairs of ``grid`` for the backbone ``config``."""
    s, d = grid.per_frame, amf.width(config)
    n = pair_count(grid.frames, amf.pairs, amf.span)
    if amf.kind == "dense":
        logits, expectation = 2 * s * s * d, 2 * s * s * 2
        forward = n * (logits + expectation)
        reference = n * logits if amf.reference_argmax else forward
        return AMFFlops(reference, forward, n * (expectation + 2 * logits))
    th, tw = amf.tile
    if grid.height % th or grid.width % tw:
        raise ValueError(f"tile {amf.tile} does not divide the {grid.height}x{grid.width} token grid")
    tiles = s // (th * tw)
    keys = min(amf.window, grid.height) * min(amf.window, grid.width)
    coarse = 2 * tiles * s * (d + 2)
    fine = 2 * s * keys * (d + 2)
    key_means = tiles * keys * d
    forward = n * (coarse + fine + key_means)
    backward = n * (2 * s * keys * 2 + 2 * 2 * s * keys * d + key_means)
    return AMFFlops(forward, forward, backward)
