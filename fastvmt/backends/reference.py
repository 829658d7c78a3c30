"""The reference AMF backend: docs/algorithm.md#dense-amf and #windowed-amf, literally.

Every op materialises the full ``S x S`` logits of each frame pair, masks what the definition excludes with
``-inf``, applies softmax and takes the expected key position. It is the oracle for every other backend and is
never chosen automatically.
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from fastvmt.backends.base import AMFBackend
from fastvmt.geometry import token_positions

__all__ = ["ReferenceBackend"]


def _pair_logits(q: Tensor, k: Tensor, pairs: Tensor, scale: float) -> Float[Tensor, "n sq s"]:
    f, h, w, d = k.shape
    queries = q.reshape(q.shape[0], -1, d)[pairs[:, 0]]
    keys = k.reshape(f, h * w, d)[pairs[:, 1]]
    return scale * queries @ keys.transpose(-1, -2)


def window_mask(
    height: int, width: int, starts: Int[Tensor, "n p 2"], tile: tuple[int, int], extent: tuple[int, int]
) -> Bool[Tensor, "n s s"]:
    """``mask[n, s, m]``: key ``m`` lies in the window of the tile that owns query ``s``."""
    th, tw = tile
    pos = token_positions(height, width, dtype=torch.long, device=starts.device)
    tile_of_query = (pos[:, 0] // th) * (width // tw) + pos[:, 1] // tw  # (S,)
    corner = starts[:, tile_of_query]  # (N, S, 2): window corner of each query's tile
    offset = pos[None, None, :, :] - corner[:, :, None, :]  # (N, S, S, 2): key position relative to the corner
    inside_rows = (offset[..., 0] >= 0) & (offset[..., 0] < extent[0])
    inside_cols = (offset[..., 1] >= 0) & (offset[..., 1] < extent[1])
    return inside_rows & inside_cols


class ReferenceBackend(AMFBackend):
    """Literal, memory-hungry (``N * S * S`` logits) and exact: the test oracle."""

    name = "reference"

    def dense_positions(self, q, k, pairs, scale):
        pos = token_positions(k.shape[1], k.shape[2], dtype=q.dtype, device=q.device)
        return _pair_logits(q, k, pairs, scale).softmax(dim=-1) @ pos

    def dense_argmax_positions(self, q, k, pairs):
        pos = token_positions(k.shape[1], k.shape[2], dtype=q.dtype, device=q.device)
        with torch.no_grad():
            return pos[_pair_logits(q, k, pairs, 1.0).argmax(dim=-1)]

    def windowed_positions(self, q, k, pairs, starts, tile, extent, scale):
        h, w = k.shape[1:3]
        pos = token_positions(h, w, dtype=q.dtype, device=q.device)
        logits = _pair_logits(q, k, pairs, scale)
        masked = logits.masked_fill(~window_mask(h, w, starts, tile, extent), float("-inf"))
        return masked.softmax(dim=-1) @ pos

    def window_key_means(self, k, pairs, starts, extent):
        f, h, w, d = k.shape
        pos = token_positions(h, w, dtype=torch.long, device=k.device)
        offset = pos[None, None] - starts[:, :, None, :]  # (N, P, S, 2)
        inside = ((offset >= 0) & (offset < torch.tensor(extent, device=k.device))).all(dim=-1)
        weights = inside.to(k.dtype) / (extent[0] * extent[1])
        return weights @ k.reshape(f, h * w, d)[pairs[:, 1]]
