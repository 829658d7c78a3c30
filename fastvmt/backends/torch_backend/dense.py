"""Dense AMF in plain torch: fused attention with ``V = pos``, chunked over frame pairs.

``scaled_dot_product_attention`` keeps the ``S x S`` probabilities out of memory only on its fused kernels.
On CPU the fused (flash) kernel needs values as wide as the queries, so ``V`` is the two position columns
padded with zeros to ``D`` columns: twice the multiply-adds of a ``D=2`` product, but no ``S x S`` tensor (the
unfused path it would take otherwise stores the logits and the probabilities and is not faster).
The argmax variant computes the logits of a bounded block of queries at a time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from fastvmt.backends.reference import token_positions

__all__ = ["dense_argmax_positions", "dense_positions"]


def _chunks(total: int, size: int):
    for start in range(0, total, size):
        yield slice(start, min(start + size, total))


def dense_positions(q: Tensor, k: Tensor, pairs: Tensor, scale: float, *, chunk_bytes: int) -> Tensor:
    """Expected key position (N, Sq, 2) of each query ``q[i]`` (F, Sq, D) over all keys of ``k[j]`` (F, H, W, D)."""
    f, h, w, d = k.shape
    work = torch.promote_types(q.dtype, torch.float32)
    keys = k.reshape(f, h * w, d).to(work)
    queries = q.to(work)
    values = F.pad(token_positions(h, w, dtype=work, device=q.device), (0, max(d - 2, 0)))
    # memory of one pair: gathered queries, keys and values, the output, and on unfused kernels the logits
    per_pair = work.itemsize * (q.shape[1] * (d + h * w) + 2 * h * w * d)
    out = []
    for part in _chunks(pairs.shape[0], max(1, chunk_bytes // per_pair)):
        qs, ks = queries[pairs[part, 0]], keys[pairs[part, 1]]
        vs = values.expand(ks.shape[0], -1, -1)
        attended = F.scaled_dot_product_attention(qs[:, None], ks[:, None], vs[:, None], scale=scale)
        out.append(attended[:, 0, :, :2])
    return torch.cat(out).to(q.dtype)


def dense_argmax_positions(q: Tensor, k: Tensor, pairs: Tensor, *, chunk_bytes: int) -> Tensor:
    """Position (N, Sq, 2) of each query's highest-scoring key (ties: lowest raster index). No gradient."""
    f, h, w, d = k.shape
    keys = k.detach().reshape(f, h * w, d)
    queries = q.detach()
    pos = token_positions(h, w, dtype=q.dtype, device=q.device)
    rows = max(1, chunk_bytes // (queries.element_size() * h * w))  # query rows of logits per block
    out = torch.empty(pairs.shape[0], q.shape[1], 2, dtype=q.dtype, device=q.device)
    for n, (i, j) in enumerate(pairs.tolist()):
        for part in _chunks(q.shape[1], rows):
            out[n, part] = pos[(queries[i, part] @ keys[j].T).argmax(dim=-1)]
    return out
