"""Dense AMF in plain torch: attention with ``V = pos`` over whole key frames, memory bounded by chunks.

Two kernels:

- ``gemm`` (default): per frame pair and block of query rows, logits = one GEMM, softmax, positions =
  ``probs @ pos``; a hand-written backward (``dlogit = p * <g, pos(m) - out>``, two GEMMs) recomputes the
  probabilities unless the forward could keep them within ``save_bytes``. Temporaries: one block of logits.
- ``sdpa``: ``scaled_dot_product_attention``, chunked over pairs. On CPU its fused (flash) kernel needs values
  as wide as the queries, so ``V`` is the two position columns zero-padded to ``D`` (the unfused path would
  store ``S x S`` logits); that doubles the value GEMMs and makes it slower than ``gemm`` on CPU (forward +
  backward ~1.9x slower at 21x30x52x128 and 21x45x80x128 on 2 cores, ``benchmarks/amf.py``). Kept for GPUs,
  whose fused kernels it reaches.

The argmax variant computes the logits of a bounded block of queries at a time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from fastvmt.geometry import token_positions

__all__ = ["dense_argmax_positions", "dense_positions", "dense_positions_sdpa"]


def _row_blocks(total: int, size: int):
    for start in range(0, total, size):
        yield slice(start, min(start + size, total))


class _DensePositions(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, pairs, scale, chunk_bytes, save_bytes):
        work = torch.promote_types(q.dtype, torch.float32)
        f, h, w, d = k.shape
        s, sq, n = h * w, q.shape[1], pairs.shape[0]
        queries = q.to(work) * scale
        keys = k.to(work).reshape(f, s, d)
        pos = token_positions(h, w, dtype=work, device=q.device)
        rows = max(1, min(sq, chunk_bytes // (2 * s * work.itemsize)))  # logits and dlogits of one block
        keep = any(ctx.needs_input_grad[:2]) and n * sq * s * work.itemsize <= save_bytes
        saved = torch.empty(n, sq, s, dtype=work, device=q.device) if keep else None
        out = torch.empty(n, sq, 2, dtype=work, device=q.device)
        logits = torch.empty(rows, s, dtype=work, device=q.device)
        for p, (i, j) in enumerate(pairs.tolist()):
            for part in _row_blocks(sq, rows):
                block = torch.mm(queries[i, part], keys[j].T, out=logits[: part.stop - part.start])
                probs = torch.softmax(block, dim=-1, out=saved[p, part] if keep else block)
                torch.mm(probs, pos, out=out[p, part])
        ctx.save_for_backward(q, k, out)
        ctx.saved, ctx.scale, ctx.rows, ctx.pairs = saved, scale, rows, pairs
        return out.to(q.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        q, k, out = ctx.saved_tensors
        saved, scale, rows, pairs = ctx.saved, ctx.scale, ctx.rows, ctx.pairs
        work = out.dtype
        f, h, w, d = k.shape
        s, sq = h * w, q.shape[1]
        want_q, want_k = ctx.needs_input_grad[:2]
        queries = q.to(work) * scale
        keys = k.to(work).reshape(f, s, d)
        grads = grad_out.to(work)
        grid_rows = torch.arange(h, dtype=work, device=q.device)
        grid_cols = torch.arange(w, dtype=work, device=q.device)
        grad_queries = torch.zeros_like(queries) if want_q else None
        grad_keys = torch.zeros_like(keys) if want_k else None
        logits = torch.empty(rows, s, dtype=work, device=q.device)
        dlogits = torch.empty(rows, s, dtype=work, device=q.device)
        for p, (i, j) in enumerate(pairs.tolist()):
            for part in _row_blocks(sq, rows):
                count = part.stop - part.start
                if saved is None:
                    block = torch.mm(queries[i, part], keys[j].T, out=logits[:count])
                    probs = torch.softmax(block, dim=-1, out=block)
                else:
                    probs = saved[p, part]
                # dlogit[s, (r, c)] = p * (g_row * (r - out_row) + g_col * (c - out_col))
                g, o = grads[p, part], out[p, part]
                row_terms = g[:, :1] * (grid_rows - o[:, :1])  # (R, H)
                col_terms = g[:, 1:] * (grid_cols - o[:, 1:])  # (R, W)
                step = dlogits[:count]
                torch.add(row_terms[:, :, None], col_terms[:, None, :], out=step.view(count, h, w))
                step.mul_(probs)
                if want_q:
                    grad_queries[i, part].addmm_(step, keys[j])
                if want_k:
                    grad_keys[j].addmm_(step.T, queries[i, part])
        grad_q = (grad_queries * scale).to(q.dtype) if want_q else None
        grad_k = grad_keys.view(k.shape).to(k.dtype) if want_k else None
        return grad_q, grad_k, None, None, None, None


def dense_positions(q: Tensor, k: Tensor, pairs: Tensor, scale: float, *, chunk_bytes: int, save_bytes: int) -> Tensor:
    """Expected key position (N, Sq, 2) of each query ``q[i]`` (F, Sq, D) over all keys of ``k[j]`` (F, H, W, D)."""
    return _DensePositions.apply(q, k, pairs, float(scale), chunk_bytes, save_bytes)


def dense_positions_sdpa(q: Tensor, k: Tensor, pairs: Tensor, scale: float, *, chunk_bytes: int) -> Tensor:
    """:func:`dense_positions` on ``scaled_dot_product_attention`` (see the module docstring)."""
    f, h, w, d = k.shape
    work = torch.promote_types(q.dtype, torch.float32)
    keys = k.reshape(f, h * w, d).to(work)
    queries = q.to(work)
    values = F.pad(token_positions(h, w, dtype=work, device=q.device), (0, max(d - 2, 0)))
    # memory of one pair: gathered queries, keys and values, the output, and on unfused kernels the logits
    per_pair = work.itemsize * (q.shape[1] * (d + h * w) + 2 * h * w * d)
    out = []
    for part in _row_blocks(pairs.shape[0], max(1, chunk_bytes // per_pair)):
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
        for part in _row_blocks(q.shape[1], rows):
            out[n, part] = pos[(queries[i, part] @ keys[j].T).argmax(dim=-1)]
    return out
