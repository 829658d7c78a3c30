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
the logits, which is one product over the concatenated heads (``D = heads * head_dim``). What is computed
(frame pairs, span, heads, tiles, window, reference mode) is read off the extractor itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastvmt.backbones.architecture import DiTConfig
from fastvmt.interfaces import MotionExtractor, TokenGrid
from fastvmt.ops import frame_pairs
from fastvmt.strategies.extractors import DenseAMFExtractor, WindowedAMFExtractor

__all__ = ["AMFFlops", "amf_flops"]


@dataclass(frozen=True)
class AMFFlops:
    """FLOPs of one motion extraction: the reference (no gradient), the generated forward and its backward."""

    reference: int
    forward: int
    backward: int


def _width(heads: str, config: DiTConfig) -> int:
    """Feature width ``D`` of the logits products."""
    return config.head_dim if heads == "mean_qk" else config.num_heads * config.head_dim


def amf_flops(extractor: MotionExtractor, config: DiTConfig, grid: TokenGrid) -> AMFFlops:
    """FLOPs of one AMF extraction by ``extractor`` over all its frame pairs of ``grid`` on the DiT ``config``."""
    if not isinstance(extractor, (DenseAMFExtractor, WindowedAMFExtractor)):
        raise ValueError(f"the cost model counts the dense and windowed AMF extractors, not {type(extractor).__name__}")
    s, d = grid.tokens_per_frame, _width(extractor.heads, config)
    n = len(frame_pairs(grid.frames, extractor.sf, extractor.pairs))
    if isinstance(extractor, DenseAMFExtractor):
        logits, expectation = 2 * s * s * d, 2 * s * s * 2
        forward = n * (logits + expectation)
        reference = n * logits if extractor.reference_mode == "argmax" else forward
        return AMFFlops(reference, forward, n * (expectation + 2 * logits))
    extractor.check(grid)
    th, tw = extractor.tile
    tiles = s // (th * tw)
    keys = min(extractor.window, grid.height) * min(extractor.window, grid.width)
    coarse = 2 * tiles * s * (d + 2)
    fine = 2 * s * keys * (d + 2)
    key_means = tiles * keys * d
    forward = n * (coarse + fine + key_means)
    backward = n * (2 * s * keys * 2 + 2 * 2 * s * keys * d + key_means)
    return AMFFlops(forward, forward, backward)
