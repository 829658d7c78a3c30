"""Kernel launches and ``torch.autograd.Function`` wrappers of the Triton AMF kernels.

The forward passes save the inputs and the per-query base-2 log-sum-exp (``N x SQ`` floats); the backward
passes recompute the probabilities from it, so the memory of a pass is ``O(N * SQ)`` besides inputs and
gradients. The backward kernels use no atomics (``worklists`` orders their work), so gradients are bit-identical
run to run. Positions, softmax statistics and outputs are accumulated and returned in float32 whatever the inputs' dtype
(a bfloat16 position would step by 0.25-0.5 token); gradients come back in the inputs' dtype.
"""

from __future__ import annotations

import torch
import triton
from jaxtyping import Float, Int
from torch import Tensor
from torch.autograd.function import once_differentiable

from fastvmt.backends.triton.configs import block_d, dot_precision, query_block_shape, windowed_dk_block
from fastvmt.backends.triton.dense_kernels import (
    dense_argmax_kernel,
    dense_dk_kernel,
    dense_dq_kernel,
    dense_forward_kernel,
)
from fastvmt.backends.triton.windowed_kernels import (
    MAX_FRAME_TOKENS,
    windowed_dk_kernel,
    windowed_dq_kernel,
    windowed_forward_kernel,
)
from fastvmt.backends.triton.worklists import key_block_entries, pairs_by_frame
from fastvmt.checkmode import checks_active

__all__ = ["dense_argmax_positions", "dense_positions", "windowed_positions"]


def _check_inputs(q: Tensor, k: Tensor, pairs: Tensor, starts: Tensor | None = None, tile=None, extent=None) -> None:
    """Refuse what would make the kernels read out of bounds (values only in check mode: they need a sync)."""
    if q.dtype != k.dtype or q.device != k.device or q.shape[0] != k.shape[0] or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q {tuple(q.shape)} {q.dtype} and k {tuple(k.shape)} {k.dtype} must share frames, D, dtype")
    f, h, w, _ = k.shape
    if pairs.ndim != 2 or pairs.shape[1] != 2:
        raise ValueError(f"pairs must have shape (N, 2), got {tuple(pairs.shape)}")
    if starts is not None:
        if q.shape != k.shape:
            raise ValueError(f"windowed AMF needs q and k of one shape, got {tuple(q.shape)} and {tuple(k.shape)}")
        (th, tw), (eh, ew) = tile, extent
        tiles = (h // th) * (w // tw)
        if h * w >= MAX_FRAME_TOKENS:
            raise ValueError(f"the windowed kernels take frames of fewer than {MAX_FRAME_TOKENS} tokens, got {h}x{w}")
        if h % th or w % tw or starts.shape != (pairs.shape[0], tiles, 2) or not (0 < eh <= h and 0 < ew <= w):
            raise ValueError(
                f"tile {tile} must divide the grid {h}x{w}, extent {extent} fit in it and starts have shape "
                f"({pairs.shape[0]}, {tiles}, 2), got {tuple(starts.shape)}"
            )
    if checks_active():
        if pairs.numel() and not bool(((pairs >= 0) & (pairs < f)).all()):
            raise ValueError(f"pairs must index frames 0..{f - 1}")
        if starts is not None and starts.numel():
            limit = torch.tensor([h - extent[0], w - extent[1]], device=starts.device)
            if not bool(((starts >= 0) & (starts <= limit)).all()):
                raise ValueError(f"window starts must keep the {extent} windows inside the {h}x{w} grid")


def _dense_meta(dtype: torch.dtype, h: int, w: int, d: int) -> dict:
    """Compile-time arguments of the dense kernels: the frame size is constexpr (no runtime division)."""
    return dict(H=h, W=w, BLOCK_D=block_d(d), PRECISION=dot_precision(dtype))


def _delta(out: Tensor, grad_out: Tensor) -> Float[Tensor, "n sq"]:
    """``E[pos] . dOut`` per query, float32."""
    return (out * grad_out).sum(-1).contiguous()


class _DensePositions(torch.autograd.Function):
    """Expected key positions over whole frames; inputs ``q`` ``(F, SQ, D)``, ``k`` ``(F, H, W, D)``."""

    @staticmethod
    def forward(ctx, q, k, pairs, scale):
        f, h, w, d = k.shape
        sq, n = q.shape[1], pairs.shape[0]
        out = torch.empty(n, sq, 2, device=q.device, dtype=torch.float32)
        lse2 = torch.empty(n, sq, device=q.device, dtype=torch.float32)
        grid = lambda cfg: (triton.cdiv(sq, cfg["BLOCK_M"]), n)  # noqa: E731
        dense_forward_kernel[grid](q, k, pairs, out, lse2, scale, sq, d, **_dense_meta(q.dtype, h, w, d))
        ctx.save_for_backward(q, k, pairs, out, lse2)
        ctx.scale = scale
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        q, k, pairs, out, lse2 = ctx.saved_tensors
        f, h, w, d = k.shape
        sq = q.shape[1]
        grad_out = grad_out.float().contiguous()
        delta = _delta(out, grad_out)
        meta = _dense_meta(q.dtype, h, w, d)
        grads = (grad_out, lse2, delta)
        dq = dk = None
        if ctx.needs_input_grad[0]:
            dq = torch.empty(q.shape, device=q.device, dtype=torch.float32)
            grid_q = lambda cfg: (triton.cdiv(sq, cfg["BLOCK_M"]), f)  # noqa: E731
            dense_dq_kernel[grid_q](q, k, pairs, *pairs_by_frame(pairs[:, 0], f), *grads, dq, ctx.scale, sq, d, **meta)
            dq = dq.to(q.dtype)
        if ctx.needs_input_grad[1]:
            dk = torch.empty(k.shape, device=k.device, dtype=torch.float32)
            grid_k = lambda cfg: (triton.cdiv(h * w, cfg["BLOCK_N"]), f)  # noqa: E731
            dense_dk_kernel[grid_k](q, k, pairs, *pairs_by_frame(pairs[:, 1], f), *grads, dk, ctx.scale, sq, d, **meta)
            dk = dk.to(k.dtype)
        return dq, dk, None, None


class _WindowedPositions(torch.autograd.Function):
    """Expected key positions over each tile's window; inputs ``q``, ``k`` ``(F, H, W, D)``."""

    @staticmethod
    def forward(ctx, q, k, pairs, starts, tile, extent, scale):
        f, h, w, d = k.shape
        n = pairs.shape[0]
        out = torch.empty(n, h * w, 2, device=q.device, dtype=torch.float32)
        lse2 = torch.empty(n, h * w, device=q.device, dtype=torch.float32)
        shape_args = (scale, h, w, d, *tile, *extent)
        meta = dict(BLOCK_D=block_d(d), PRECISION=dot_precision(q.dtype))
        windowed_forward_kernel[_windowed_grid(h, w, n)](q, k, pairs, starts, out, lse2, *shape_args, **meta)
        ctx.save_for_backward(q, k, pairs, starts, out, lse2)
        ctx.shape_args, ctx.tile, ctx.extent = shape_args, tile, extent
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        q, k, pairs, starts, out, lse2 = ctx.saved_tensors
        f, h, w, d = k.shape
        grad_out = grad_out.float().contiguous()
        delta = _delta(out, grad_out)
        meta = dict(BLOCK_D=block_d(d), PRECISION=dot_precision(q.dtype))
        grads = (starts, grad_out, lse2, delta)
        dq = dk = None
        if ctx.needs_input_grad[0]:
            dq = torch.empty(q.shape, device=q.device, dtype=torch.float32)
            windowed_dq_kernel[_windowed_grid(h, w, f)](
                q, k, pairs, *pairs_by_frame(pairs[:, 0], f), *grads, dq, *ctx.shape_args, **meta
            )
            dq = dq.to(q.dtype)
        if ctx.needs_input_grad[1]:
            dk = torch.empty(k.shape, device=k.device, dtype=torch.float32)
            windowed_dk_kernel[_key_rectangles(h, w, f)](
                q, k, pairs, *_windowed_dk_entries(pairs, starts, f, (h, w), ctx.tile, ctx.extent), *grads, dk,
                *ctx.shape_args, **meta,
            )  # fmt: skip
            dk = dk.to(k.dtype)
        return dq, dk, None, None, None, None, None


def _key_rectangle() -> tuple[int, int]:
    """Rows x cols of the key rectangle a windowed dk program owns (``windowed_dk_block``)."""
    block = windowed_dk_block()
    return block["BLOCK_N"] // block["KW"], block["KW"]


def _key_rectangles(h: int, w: int, frames: int) -> tuple[int, int]:
    """Grid of the windowed dk pass: key rectangles of a frame x frames."""
    kh, kw = _key_rectangle()
    return triton.cdiv(h, kh) * triton.cdiv(w, kw), frames


def _windowed_dk_entries(pairs, starts, frames: int, grid: tuple[int, int], tile, extent):
    """``windowed_dk_kernel``'s (pair, query block) entries per key rectangle, for its fixed block sizes."""
    (h, w), (th, tw) = grid, tile
    query_block = query_block_shape(windowed_dk_block()["BLOCK_M"], tile, (h // th, w // tw), extent)
    return key_block_entries(starts, pairs[:, 1], frames, grid, tile, extent, query_block, _key_rectangle())


def _windowed_grid(h: int, w: int, programs: int):
    """Grid of the query-block kernels: query blocks of a frame x ``programs`` (pairs or frames)."""
    return lambda cfg: (triton.cdiv(h, cfg["QH"]) * triton.cdiv(w, cfg["QW"]), programs)


def dense_positions(
    q: Float[Tensor, "f sq d"], k: Float[Tensor, "f h w d"], pairs: Int[Tensor, "n 2"], scale: float
) -> Float[Tensor, "n sq 2"]:
    """Expected key position of each query of frame ``i`` over all keys of frame ``j`` (differentiable)."""
    pairs = pairs.to(q.device, torch.long)
    _check_inputs(q, k, pairs)
    return _DensePositions.apply(q.contiguous(), k.contiguous(), pairs.contiguous(), float(scale))


def dense_argmax_positions(
    q: Float[Tensor, "f sq d"], k: Float[Tensor, "f h w d"], pairs: Int[Tensor, "n 2"]
) -> Float[Tensor, "n sq 2"]:
    """Position of each query's highest-scoring key of frame ``j`` (ties: lowest raster index), no gradient."""
    pairs = pairs.to(q.device, torch.long)
    _check_inputs(q, k, pairs)
    f, h, w, d = k.shape
    sq, n = q.shape[1], pairs.shape[0]
    out = torch.empty(n, sq, 2, device=q.device, dtype=torch.float32)
    grid = lambda cfg: (triton.cdiv(sq, cfg["BLOCK_M"]), n)  # noqa: E731
    with torch.no_grad():
        dense_argmax_kernel[grid](q.detach().contiguous(), k.detach().contiguous(), pairs.contiguous(), out,
                                  sq, d, **_dense_meta(q.dtype, h, w, d))  # fmt: skip
    return out


def windowed_positions(
    q: Float[Tensor, "f h w d"],
    k: Float[Tensor, "f h w d"],
    pairs: Int[Tensor, "n 2"],
    starts: Int[Tensor, "n p 2"],
    tile: tuple[int, int],
    extent: tuple[int, int],
    scale: float,
) -> Float[Tensor, "n s 2"]:
    """Expected key position of each query over its tile's window, raster order (differentiable)."""
    pairs, starts = pairs.to(q.device, torch.long), starts.to(q.device, torch.long)
    _check_inputs(q, k, pairs, starts, tile, extent)
    return _WindowedPositions.apply(
        q.contiguous(), k.contiguous(), pairs.contiguous(), starts.contiguous(), tuple(tile), tuple(extent),
        float(scale),
    )  # fmt: skip
