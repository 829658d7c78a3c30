"""Fused dense-AMF kernels: flash attention with V = key position, plus the argmax variant.

Layout: ``q`` contiguous ``(F, SQ, D)`` (any ``SQ`` queries per frame), ``k`` contiguous ``(F, S, D)`` with
``S = H * W`` in raster order, ``pairs`` ``(N, 2)`` int64. The forward streams key blocks with an online
softmax in base 2 and keeps only two running sums (row and column, computed from the key index), so no
``SQ x S`` tensor exists; it saves ``lse2 = log2 sum_m 2^(scale*log2(e)*q.k_m)`` for the backward.

The backward follows FlashAttention-2: one pass per query block for ``dq`` and one per key block for ``dk``,
both recomputing ``p`` from ``lse2``, with ``ds = p * (pos . dOut - E[pos] . dOut)``. Pairs share frames, so a
backward program owns a block of one frame (grid axis 1 = frame, not pair) and loops over the pairs that read
that frame (``order[offsets[f]:offsets[f + 1]]``, ascending pair index), accumulating in registers and storing
its block once: no atomics, the summation order is fixed and the gradients are bit-identical run to run.
"""

from __future__ import annotations

from typing import no_type_check

import triton
import triton.language as tl

from fastvmt.backends.triton.configs import dense_backward_configs, dense_configs

__all__ = [
    "dense_argmax_kernel", "dense_dk_kernel", "dense_dq_kernel", "dense_forward_kernel", "group_range", "key_position",
    "pair_bases",
]

_TUNING_KEY = ["SQ", "H", "W", "D", "PRECISION"]


@triton.jit
@no_type_check
def pair_bases(pairs_ptr, n, q_frame_size, k_frame_size, rows_per_pair):
    """Offsets (int64 scalars) of pair ``n``'s query frame and key frame, and of its first output row.

    Kept scalar so that the per-element offsets inside a frame stay 32-bit (fewer registers).
    """
    frame_q = tl.load(pairs_ptr + 2 * n)
    frame_k = tl.load(pairs_ptr + 2 * n + 1)
    return frame_q * q_frame_size, frame_k * k_frame_size, n * rows_per_pair


@triton.jit
@no_type_check
def group_range(offsets_ptr, group):
    """Range ``[first, last)`` of ``group``'s entries in a grouped work list (the pairs that read a frame), int64."""
    return tl.load(offsets_ptr + group), tl.load(offsets_ptr + group + 1)


@triton.jit
@no_type_check
def key_position(key, W: tl.constexpr):
    """Row and column (float32) of raster indices ``key`` (non-negative) in a frame of constexpr width ``W``.

    Unsigned division by a compile-time constant: a multiply-high and a shift, no runtime division.
    """
    index = key.to(tl.uint32)
    row = index // W
    return row.to(tl.float32), (index - row * W).to(tl.float32)


@triton.autotune(configs=dense_configs(), key=_TUNING_KEY)
@triton.jit
@no_type_check
def dense_forward_kernel(
    q_ptr, k_ptr, pairs_ptr, out_ptr, lse2_ptr,
    scale, SQ, D,
    H: tl.constexpr, W: tl.constexpr,
    BLOCK_D: tl.constexpr, PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    """Grid ``(cdiv(SQ, BLOCK_M), N)``. Writes ``out`` ``(N, SQ, 2)`` fp32 and ``lse2`` ``(N, SQ)`` fp32."""
    n = tl.program_id(1).to(tl.int64)
    S = H * W
    q_frame, k_frame, row = pair_bases(pairs_ptr, n, SQ * D, S * D, SQ)
    s = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    valid = s < SQ
    feat = tl.arange(0, BLOCK_D)
    feat_ok = feat < D
    q = tl.load(q_ptr + q_frame + s[:, None] * D + feat[None, :], mask=valid[:, None] & feat_ok[None, :], other=0.0)
    qk_scale = scale * 1.4426950408889634  # log2(e): softmax in base 2
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc_r = tl.zeros([BLOCK_M], tl.float32)
    acc_c = tl.zeros([BLOCK_M], tl.float32)
    for first in range(0, S, BLOCK_N):
        key = first + tl.arange(0, BLOCK_N)
        key_ok = key < S
        k = tl.load(
            k_ptr + k_frame + key[:, None] * D + feat[None, :], mask=key_ok[:, None] & feat_ok[None, :], other=0.0
        )
        qk = tl.dot(q, tl.trans(k), input_precision=PRECISION)
        logits = tl.where(key_ok[None, :], qk * qk_scale, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(logits, axis=1))
        alpha = tl.exp2(m_i - m_new)
        p = tl.exp2(logits - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, axis=1)
        key_r, key_c = key_position(key, W)
        acc_r = acc_r * alpha + tl.sum(p * key_r[None, :], axis=1)
        acc_c = acc_c * alpha + tl.sum(p * key_c[None, :], axis=1)
        m_i = m_new
    tl.store(out_ptr + 2 * row + 2 * s, acc_r / l_i, mask=valid)
    tl.store(out_ptr + 2 * row + 2 * s + 1, acc_c / l_i, mask=valid)
    tl.store(lse2_ptr + row + s, m_i + tl.log2(l_i), mask=valid)


@triton.jit
@no_type_check
def _grad_logits(q, k, key, key_ok, lse2, delta, dout_r, dout_c, qk_scale, W: tl.constexpr, PRECISION: tl.constexpr):
    """``ds = p * (pos . dOut - delta)`` of a ``(BLOCK_M, BLOCK_N)`` block, in the inputs' dtype."""
    qk = tl.dot(q, tl.trans(k), input_precision=PRECISION)
    p = tl.where(key_ok[None, :], tl.exp2(qk * qk_scale - lse2[:, None]), 0.0)
    key_r, key_c = key_position(key, W)
    dpos = key_r[None, :] * dout_r[:, None] + key_c[None, :] * dout_c[:, None]
    return (p * (dpos - delta[:, None])).to(k.dtype)


@triton.autotune(configs=dense_backward_configs(), key=_TUNING_KEY)
@triton.jit
@no_type_check
def dense_dq_kernel(
    q_ptr, k_ptr, pairs_ptr, order_ptr, offsets_ptr, dout_ptr, lse2_ptr, delta_ptr, dq_ptr,
    scale, SQ, D,
    H: tl.constexpr, W: tl.constexpr,
    BLOCK_D: tl.constexpr, PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    """Grid ``(cdiv(SQ, BLOCK_M), F)``. Stores ``scale * sum_pairs ds @ K`` of query frame ``f`` into ``dq``
    ``(F, SQ, D)`` fp32; ``order``/``offsets`` list the pairs by query frame."""
    frame = tl.program_id(1).to(tl.int64)
    S = H * W
    s = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    valid = s < SQ
    feat = tl.arange(0, BLOCK_D)
    feat_ok = feat < D
    q_frame = frame * SQ * D
    q_offsets = s[:, None] * D + feat[None, :]
    q_mask = valid[:, None] & feat_ok[None, :]
    q = tl.load(q_ptr + q_frame + q_offsets, mask=q_mask, other=0.0)
    qk_scale = scale * 1.4426950408889634
    dq = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    first_pair, last_pair = group_range(offsets_ptr, frame)
    for at in range(first_pair, last_pair):
        _, k_frame, row = pair_bases(pairs_ptr, tl.load(order_ptr + at), SQ * D, S * D, SQ)
        lse2 = tl.load(lse2_ptr + row + s, mask=valid, other=0.0)
        delta = tl.load(delta_ptr + row + s, mask=valid, other=0.0)
        dout_r = tl.load(dout_ptr + 2 * row + 2 * s, mask=valid, other=0.0)
        dout_c = tl.load(dout_ptr + 2 * row + 2 * s + 1, mask=valid, other=0.0)
        for first in range(0, S, BLOCK_N):
            key = first + tl.arange(0, BLOCK_N)
            key_ok = key < S
            k = tl.load(
                k_ptr + k_frame + key[:, None] * D + feat[None, :], mask=key_ok[:, None] & feat_ok[None, :], other=0.0
            )
            ds = _grad_logits(q, k, key, key_ok, lse2, delta, dout_r, dout_c, qk_scale, W, PRECISION)
            dq += tl.dot(ds, k, input_precision=PRECISION)
    tl.store(dq_ptr + q_frame + q_offsets, dq * scale, mask=q_mask)


@triton.autotune(configs=dense_backward_configs(), key=_TUNING_KEY)
@triton.jit
@no_type_check
def dense_dk_kernel(
    q_ptr, k_ptr, pairs_ptr, order_ptr, offsets_ptr, dout_ptr, lse2_ptr, delta_ptr, dk_ptr,
    scale, SQ, D,
    H: tl.constexpr, W: tl.constexpr,
    BLOCK_D: tl.constexpr, PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    """Grid ``(cdiv(S, BLOCK_N), F)``. Stores ``scale * sum_pairs ds^T @ Q`` of key frame ``f`` into ``dk``
    ``(F, S, D)`` fp32; ``order``/``offsets`` list the pairs by key frame."""
    frame = tl.program_id(1).to(tl.int64)
    S = H * W
    key = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    key_ok = key < S
    feat = tl.arange(0, BLOCK_D)
    feat_ok = feat < D
    k_frame = frame * S * D
    k_offsets = key[:, None] * D + feat[None, :]
    k_mask = key_ok[:, None] & feat_ok[None, :]
    k = tl.load(k_ptr + k_frame + k_offsets, mask=k_mask, other=0.0)
    qk_scale = scale * 1.4426950408889634
    dk = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    first_pair, last_pair = group_range(offsets_ptr, frame)
    for at in range(first_pair, last_pair):
        q_frame, _, row = pair_bases(pairs_ptr, tl.load(order_ptr + at), SQ * D, S * D, SQ)
        for first in range(0, SQ, BLOCK_M):
            s = first + tl.arange(0, BLOCK_M)
            valid = s < SQ
            q = tl.load(
                q_ptr + q_frame + s[:, None] * D + feat[None, :], mask=valid[:, None] & feat_ok[None, :], other=0.0
            )
            lse2 = tl.load(lse2_ptr + row + s, mask=valid, other=0.0)
            delta = tl.load(delta_ptr + row + s, mask=valid, other=0.0)
            dout_r = tl.load(dout_ptr + 2 * row + 2 * s, mask=valid, other=0.0)
            dout_c = tl.load(dout_ptr + 2 * row + 2 * s + 1, mask=valid, other=0.0)
            ds = _grad_logits(q, k, key, key_ok, lse2, delta, dout_r, dout_c, qk_scale, W, PRECISION)
            dk += tl.dot(tl.trans(ds), q, input_precision=PRECISION)
    tl.store(dk_ptr + k_frame + k_offsets, dk * scale, mask=k_mask)


@triton.autotune(configs=dense_configs(), key=_TUNING_KEY)
@triton.jit
@no_type_check
def dense_argmax_kernel(
    q_ptr, k_ptr, pairs_ptr, out_ptr,
    SQ, D,
    H: tl.constexpr, W: tl.constexpr,
    BLOCK_D: tl.constexpr, PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    """Grid ``(cdiv(SQ, BLOCK_M), N)``. Writes the position of each query's best key (ties: lowest index)."""
    n = tl.program_id(1).to(tl.int64)
    S = H * W
    q_frame, k_frame, row = pair_bases(pairs_ptr, n, SQ * D, S * D, SQ)
    s = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    valid = s < SQ
    feat = tl.arange(0, BLOCK_D)
    feat_ok = feat < D
    q = tl.load(q_ptr + q_frame + s[:, None] * D + feat[None, :], mask=valid[:, None] & feat_ok[None, :], other=0.0)
    best = tl.full([BLOCK_M], float("-inf"), tl.float32)
    best_key = tl.zeros([BLOCK_M], tl.int32)
    for first in range(0, S, BLOCK_N):
        key = first + tl.arange(0, BLOCK_N)
        key_ok = key < S
        k = tl.load(
            k_ptr + k_frame + key[:, None] * D + feat[None, :], mask=key_ok[:, None] & feat_ok[None, :], other=0.0
        )
        qk = tl.where(key_ok[None, :], tl.dot(q, tl.trans(k), input_precision=PRECISION), float("-inf"))
        block_best = tl.max(qk, axis=1)
        block_key = first + tl.argmax(qk, axis=1, tie_break_left=True)
        better = block_best > best  # strict: an earlier block keeps its tie
        best = tl.where(better, block_best, best)
        best_key = tl.where(better, block_key, best_key)
    best_r, best_c = key_position(best_key, W)
    tl.store(out_ptr + 2 * row + 2 * s, best_r, mask=valid)
    tl.store(out_ptr + 2 * row + 2 * s + 1, best_c, mask=valid)
