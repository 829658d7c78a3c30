"""Fused windowed-AMF kernels: every query attends to the window of its tile, V = key position.

Layout: ``q``, ``k`` are contiguous ``(F, S, D)`` (``S = H * W``, raster order); ``pairs`` ``(N, 2)`` int64;
``starts`` ``(N, P, 2)`` int64 window corners, ``P = TH * TW`` tiles in raster order. One program owns a
``QH x QW`` block of query tokens of one pair (a group of whole tiles, see ``configs.query_block_shape``) and
streams the keys of the bounding box of its tiles' windows in blocks of ``BLOCK_N`` (a key's row and column in
the box come from an exact float reciprocal, no integer division); each (query, key) logit is
masked to the query's own window, so the result is exact whatever the box. Softmax is online in base 2
(``lse2 = log2 sum_m 2^(scale*log2(e)*q.k_m)``), positions are computed from key indices (never loaded), and no
``S x window`` tensor is ever written.

Backward recomputes the probabilities from ``lse2``: ``ds = p * (pos . dOut - E[pos] . dOut)``, ``dq = scale *
ds @ K`` and ``dk = scale * ds^T @ Q``, in two passes without atomics, so the gradients are bit-identical run to
run. The ``dq`` pass is query-centric: a program owns a query block of one frame and walks, pair after pair (the
frame's pairs in ascending order), the box of that block's windows. The ``dk`` pass is key-centric: a program
owns a ``(BLOCK_N // KW) x KW`` rectangle of keys of one frame and loops over the (pair, query block) entries
whose window box crosses it, a list built from the window starts (``functions``) in ascending (pair, block)
order. Both accumulate in registers and store their block once.
"""

from __future__ import annotations

from typing import no_type_check

import triton
import triton.language as tl

from fastvmt.backends.triton.configs import (
    query_block_shape,
    windowed_configs,
    windowed_dk_configs,
    windowed_dq_configs,
)
from fastvmt.backends.triton.dense_kernels import group_range, pair_bases

__all__ = ["MAX_FRAME_TOKENS", "windowed_dk_kernel", "windowed_dq_kernel", "windowed_forward_kernel"]

#: Frames of this many tokens or more are refused: the box walk's float row split is exact below it.
MAX_FRAME_TOKENS = 2**20

_TUNING_KEY = ["H", "W", "D", "th", "tw", "eh", "ew", "PRECISION"]


def _block_shape(args: dict) -> tuple[int, int]:
    tiles = (args["H"] // args["th"], args["W"] // args["tw"])
    return query_block_shape(args["BLOCK_M"], (args["th"], args["tw"]), tiles, (args["eh"], args["ew"]))


_QUERY_BLOCK = {"QH": lambda args: _block_shape(args)[0], "QW": lambda args: _block_shape(args)[1]}


@triton.jit
@no_type_check
def _query_block(pid, H, W, th, tw, QH: tl.constexpr, QW: tl.constexpr, BLOCK_M: tl.constexpr):
    """Token index, validity and tile (raster index among the frame's tiles) of query block ``pid``'s queries."""
    blocks_per_row = tl.cdiv(W, QW)
    row0 = (pid // blocks_per_row) * QH
    col0 = (pid % blocks_per_row) * QW
    local = tl.arange(0, BLOCK_M)
    rows = row0 + local // QW
    cols = col0 + local % QW
    valid = (local < QH * QW) & (rows < H) & (cols < W)
    return rows * W + cols, valid, (rows // th) * (W // tw) + cols // tw


@triton.jit
@no_type_check
def _windows(n, tile, valid, starts_ptr, tiles, H, W):
    """Window corner of each query of pair ``n`` (``tiles`` a frame) and the bounding box of those corners."""
    corner = starts_ptr + (n * tiles + tile) * 2
    start_r = tl.load(corner, mask=valid, other=0).to(tl.int32)
    start_c = tl.load(corner + 1, mask=valid, other=0).to(tl.int32)
    box_r = tl.min(tl.where(valid, start_r, H), axis=0)
    box_c = tl.min(tl.where(valid, start_c, W), axis=0)
    box_h = tl.max(tl.where(valid, start_r, 0), axis=0) - box_r
    box_w = tl.max(tl.where(valid, start_c, 0), axis=0) - box_c
    return start_r, start_c, box_r, box_c, box_h, box_w


@triton.jit
@no_type_check
def _box_keys(first, box_r, box_c, box_h, box_w, inv_w, BLOCK_N: tl.constexpr):
    """Row, column (int32) and validity of the box keys ``first .. first + BLOCK_N - 1`` (raster order in the box).

    No integer division: the row is ``trunc((t + 0.5) * inv_w)`` in float32 with ``inv_w ~ 1 / box_w``. It is
    exact for ``t < MAX_FRAME_TOKENS = 2^20``: ``(t + 0.5) / box_w`` lies at least ``0.5 / box_w`` from an
    integer, and the reciprocal (within 2 ulp) and the product (0.5 ulp) err by less than ``5 * 2^-24`` relative,
    i.e. by less than ``0.5 / box_w`` while ``t + 0.5 < 2^23 / 5``. ``functions`` refuses larger frames.
    """
    idx = first + tl.arange(0, BLOCK_N)
    local_r = ((idx.to(tl.float32) + 0.5) * inv_w).to(tl.int32)
    return box_r + local_r, box_c + (idx - local_r * box_w), idx < box_h * box_w


@triton.jit
@no_type_check
def _window_mask(valid, start_r, start_c, key_r, key_c, key_ok, eh, ew):
    """``(BLOCK_M, BLOCK_N)``: the key lies in the window of the query's tile."""
    inside_r = (key_r[None, :] >= start_r[:, None]) & (key_r[None, :] < start_r[:, None] + eh)
    inside_c = (key_c[None, :] >= start_c[:, None]) & (key_c[None, :] < start_c[:, None] + ew)
    return valid[:, None] & key_ok[None, :] & inside_r & inside_c


@triton.autotune(configs=windowed_configs(), key=_TUNING_KEY)
@triton.heuristics(_QUERY_BLOCK)
@triton.jit
@no_type_check
def windowed_forward_kernel(
    q_ptr, k_ptr, pairs_ptr, starts_ptr, out_ptr, lse2_ptr,
    scale, H, W, D, th, tw, eh, ew,
    BLOCK_D: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, QH: tl.constexpr, QW: tl.constexpr,
):  # fmt: skip
    """Grid ``(cdiv(H, QH) * cdiv(W, QW), N)``. Writes ``out`` ``(N, S, 2)`` fp32 and ``lse2`` ``(N, S)`` fp32."""
    n = tl.program_id(1).to(tl.int64)
    q_frame, k_frame, row = pair_bases(pairs_ptr, n, H * W * D, H * W * D, H * W)
    s, valid, tile = _query_block(tl.program_id(0), H, W, th, tw, QH, QW, BLOCK_M)
    start_r, start_c, box_r, box_c, box_h, box_w = _windows(n, tile, valid, starts_ptr, (H // th) * (W // tw), H, W)
    box_h += eh
    box_w += ew
    feat = tl.arange(0, BLOCK_D)
    feat_ok = feat < D
    q = tl.load(q_ptr + q_frame + s[:, None] * D + feat[None, :], mask=valid[:, None] & feat_ok[None, :], other=0.0)
    qk_scale = scale * 1.4426950408889634  # log2(e): softmax in base 2
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc_r = tl.zeros([BLOCK_M], tl.float32)
    acc_c = tl.zeros([BLOCK_M], tl.float32)
    inv_w = 1.0 / box_w.to(tl.float32)
    for first in range(0, box_h * box_w, BLOCK_N):
        key_r, key_c, key_ok = _box_keys(first, box_r, box_c, box_h, box_w, inv_w, BLOCK_N)
        k = tl.load(
            k_ptr + k_frame + (key_r * W + key_c)[:, None] * D + feat[None, :],
            mask=key_ok[:, None] & feat_ok[None, :],
            other=0.0,
        )
        qk = tl.dot(q, tl.trans(k), input_precision=PRECISION)
        inside = _window_mask(valid, start_r, start_c, key_r, key_c, key_ok, eh, ew)
        logits = tl.where(inside, qk * qk_scale, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(logits, axis=1))
        m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
        alpha = tl.exp2(m_i - m_use)
        p = tl.exp2(logits - m_use[:, None])
        l_i = l_i * alpha + tl.sum(p, axis=1)
        acc_r = acc_r * alpha + tl.sum(p * key_r.to(tl.float32)[None, :], axis=1)
        acc_c = acc_c * alpha + tl.sum(p * key_c.to(tl.float32)[None, :], axis=1)
        m_i = m_new
    l_safe = tl.where(l_i > 0, l_i, 1.0)
    tl.store(out_ptr + 2 * row + 2 * s, acc_r / l_safe, mask=valid)
    tl.store(out_ptr + 2 * row + 2 * s + 1, acc_c / l_safe, mask=valid)
    tl.store(lse2_ptr + row + s, m_i + tl.log2(l_safe), mask=valid)


@triton.jit
@no_type_check
def _grad_logits(q, k, valid, start_r, start_c, key_r, key_c, key_ok, lse2, delta, dout_r, dout_c, qk_scale, eh, ew,
                 PRECISION: tl.constexpr):  # fmt: skip
    """``ds = p * (pos . dOut - delta)`` of a ``(BLOCK_M, BLOCK_N)`` block, masked to each query's window."""
    qk = tl.dot(q, tl.trans(k), input_precision=PRECISION)
    inside = _window_mask(valid, start_r, start_c, key_r, key_c, key_ok, eh, ew)
    p = tl.where(inside, tl.exp2(qk * qk_scale - lse2[:, None]), 0.0)
    dpos = key_r.to(tl.float32)[None, :] * dout_r[:, None] + key_c.to(tl.float32)[None, :] * dout_c[:, None]
    return (p * (dpos - delta[:, None])).to(k.dtype)


@triton.jit
@no_type_check
def _query_grads(row, s, valid, lse2_ptr, delta_ptr, dout_ptr):
    """``lse2``, ``delta`` and the two components of ``dOut`` of the queries ``s`` of the pair at ``row``."""
    lse2 = tl.load(lse2_ptr + row + s, mask=valid, other=0.0)
    delta = tl.load(delta_ptr + row + s, mask=valid, other=0.0)
    dout_r = tl.load(dout_ptr + 2 * row + 2 * s, mask=valid, other=0.0)
    dout_c = tl.load(dout_ptr + 2 * row + 2 * s + 1, mask=valid, other=0.0)
    return lse2, delta, dout_r, dout_c


@triton.autotune(configs=windowed_dq_configs(), key=_TUNING_KEY)
@triton.heuristics(_QUERY_BLOCK)
@triton.jit
@no_type_check
def windowed_dq_kernel(
    q_ptr, k_ptr, pairs_ptr, order_ptr, offsets_ptr, starts_ptr, dout_ptr, lse2_ptr, delta_ptr, dq_ptr,
    scale, H, W, D, th, tw, eh, ew,
    BLOCK_D: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, QH: tl.constexpr, QW: tl.constexpr,
):  # fmt: skip
    """Grid ``(cdiv(H, QH) * cdiv(W, QW), F)``. Stores ``scale * sum_pairs ds @ K`` of query frame ``f`` into
    ``dq`` ``(F, S, D)`` fp32; ``order``/``offsets`` list the pairs by query frame.

    ``dout`` ``(N, S, 2)`` fp32 is the gradient of the positions, ``delta`` ``(N, S)`` = ``E[pos] . dout``.
    """
    frame = tl.program_id(1).to(tl.int64)
    feat = tl.arange(0, BLOCK_D)
    feat_ok = feat < D
    qk_scale = scale * 1.4426950408889634  # log2(e): softmax in base 2
    dq = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    s, valid, tile = _query_block(tl.program_id(0), H, W, th, tw, QH, QW, BLOCK_M)
    q_frame = frame * H * W * D
    q_offsets = s[:, None] * D + feat[None, :]
    q_mask = valid[:, None] & feat_ok[None, :]
    q = tl.load(q_ptr + q_frame + q_offsets, mask=q_mask, other=0.0)
    tiles = (H // th) * (W // tw)
    first_pair, last_pair = group_range(offsets_ptr, frame)
    for at in range(first_pair, last_pair):
        n = tl.load(order_ptr + at)
        _, k_frame, row = pair_bases(pairs_ptr, n, H * W * D, H * W * D, H * W)
        start_r, start_c, box_r, box_c, box_h, box_w = _windows(n, tile, valid, starts_ptr, tiles, H, W)
        lse2, delta, dout_r, dout_c = _query_grads(row, s, valid, lse2_ptr, delta_ptr, dout_ptr)
        box_h += eh
        box_w += ew
        inv_w = 1.0 / box_w.to(tl.float32)
        for first in range(0, box_h * box_w, BLOCK_N):
            key_r, key_c, key_ok = _box_keys(first, box_r, box_c, box_h, box_w, inv_w, BLOCK_N)
            k = tl.load(
                k_ptr + k_frame + (key_r * W + key_c)[:, None] * D + feat[None, :],
                mask=key_ok[:, None] & feat_ok[None, :],
                other=0.0,
            )
            ds = _grad_logits(q, k, valid, start_r, start_c, key_r, key_c, key_ok, lse2, delta, dout_r, dout_c,
                              qk_scale, eh, ew, PRECISION)  # fmt: skip
            dq += tl.dot(ds, k, input_precision=PRECISION)
    tl.store(dq_ptr + q_frame + q_offsets, dq * scale, mask=q_mask)


@triton.autotune(configs=windowed_dk_configs(), key=_TUNING_KEY)
@triton.heuristics(_QUERY_BLOCK)
@triton.jit
@no_type_check
def windowed_dk_kernel(
    q_ptr, k_ptr, pairs_ptr, entries_ptr, offsets_ptr, starts_ptr, dout_ptr, lse2_ptr, delta_ptr, dk_ptr,
    scale, H, W, D, th, tw, eh, ew,
    BLOCK_D: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, KW: tl.constexpr, QH: tl.constexpr, QW: tl.constexpr,
):  # fmt: skip
    """Grid ``(cdiv(H, BLOCK_N // KW) * cdiv(W, KW), F)``. Stores ``scale * sum ds^T @ Q`` of the key rectangle
    into ``dk`` ``(F, S, D)`` fp32.

    ``entries`` ``(E, 2)`` int64 holds (pair, query block) of every block whose windows' box crosses a key
    rectangle, grouped by (key frame, rectangle) in ascending order, group ``g`` at ``offsets[g]:offsets[g+1]``.
    """
    frame = tl.program_id(1).to(tl.int64)
    KH: tl.constexpr = BLOCK_N // KW
    rects_per_row = tl.cdiv(W, KW)
    rect = tl.program_id(0)
    rect_r = rect // rects_per_row
    local = tl.arange(0, BLOCK_N)
    key_r = rect_r * KH + local // KW
    key_c = (rect - rect_r * rects_per_row) * KW + local % KW
    key_ok = (key_r < H) & (key_c < W)
    feat = tl.arange(0, BLOCK_D)
    feat_ok = feat < D
    k_frame = frame * H * W * D
    k_offsets = (key_r * W + key_c)[:, None] * D + feat[None, :]
    k_mask = key_ok[:, None] & feat_ok[None, :]
    k = tl.load(k_ptr + k_frame + k_offsets, mask=k_mask, other=0.0)
    qk_scale = scale * 1.4426950408889634  # log2(e): softmax in base 2
    dk = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    tiles = (H // th) * (W // tw)
    first_entry, last_entry = group_range(offsets_ptr, frame * tl.num_programs(0) + rect)
    for at in range(first_entry, last_entry):
        n = tl.load(entries_ptr + 2 * at)
        q_frame, _, row = pair_bases(pairs_ptr, n, H * W * D, H * W * D, H * W)
        s, valid, tile = _query_block(tl.load(entries_ptr + 2 * at + 1), H, W, th, tw, QH, QW, BLOCK_M)
        start_r, start_c, _, _, _, _ = _windows(n, tile, valid, starts_ptr, tiles, H, W)
        q = tl.load(
            q_ptr + q_frame + s[:, None] * D + feat[None, :], mask=valid[:, None] & feat_ok[None, :], other=0.0
        )
        lse2, delta, dout_r, dout_c = _query_grads(row, s, valid, lse2_ptr, delta_ptr, dout_ptr)
        ds = _grad_logits(q, k, valid, start_r, start_c, key_r, key_c, key_ok, lse2, delta, dout_r, dout_c,
                          qk_scale, eh, ew, PRECISION)  # fmt: skip
        dk += tl.dot(tl.trans(ds), q, input_precision=PRECISION)
    tl.store(dk_ptr + k_frame + k_offsets, dk * scale, mask=k_mask)
