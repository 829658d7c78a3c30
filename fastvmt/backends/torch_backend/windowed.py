"""Windowed AMF in plain torch: packed tiles, batched GEMMs, a hand-written backward.

The plan (:func:`~fastvmt.backends.torch_backend.grouping.plan_windows`) splits the work into *units*: a frame
pair and ``T`` tiles whose windows fit one key block of ``Bk = E_r x E_c`` keys. Per chunk of units:

1. the unit's queries and its block's keys are gathered (``index_select`` of rows of ``q`` and ``k``);
2. logits = one batched GEMM (``M = T*th*tw`` queries x ``Bk`` keys), ``-inf`` outside each tile's window;
3. softmax, then the expected position *local to the block* = ``probs @ local_pos``.

The forward keeps the probabilities for the backward if they fit ``save_bytes``, else the backward recomputes
them chunk by chunk. The backward uses ``dlogit[s, m] = p[s, m] * <g[s], pos(m) - out[s]>`` (attention with
``V = pos``); two batched GEMMs give the query and block-key gradients, which go back to their rows of ``q``
and ``k`` with ``index_add_``. Chunks reuse preallocated buffers of at most ``chunk_bytes`` (fresh large
allocations would cost a page fault per 4 KiB on CPU).
"""

from __future__ import annotations

import torch
from torch import Tensor

from fastvmt.backends.torch_backend.grouping import WindowPlan, plan_windows

__all__ = ["tile_tokens", "windowed_positions"]


def tile_tokens(size: tuple[int, int], tile: tuple[int, int], device: torch.device) -> Tensor:
    """(P, th*tw): raster index of every token of every tile (tiles in raster order, tokens raster inside)."""
    (h, w), (th, tw) = size, tile
    rows = torch.arange(h, device=device).view(h // th, 1, th, 1)
    cols = torch.arange(w, device=device).view(1, w // tw, 1, tw)
    return (rows * w + cols).reshape((h // th) * (w // tw), th * tw)


def _outside(coords: Tensor, offset: Tensor, extent: int, dtype: torch.dtype) -> Tensor:
    """0 where ``offset <= coords < offset + extent``, ``-inf`` elsewhere, (..., len(coords))."""
    inside = (coords >= offset[..., None]) & (coords < offset[..., None] + extent)
    return torch.zeros(inside.shape, dtype=dtype, device=coords.device).masked_fill_(~inside, float("-inf"))


class _Units:
    """One level's units with their index tensors, chunking and the per-chunk steps shared by the forward
    and the backward."""

    def __init__(self, plan: WindowPlan, pairs: Tensor, shape, tile, extent, work, chunk_bytes: int):
        frames, self.h, self.w, self.d = shape
        self.plan, self.tile, self.extent, self.work = plan, tile, extent, work
        s = self.h * self.w
        er, ec = plan.block
        self.keys = er * ec
        self.tile_queries = tile[0] * tile[1]
        self.queries = plan.tiles_per_unit * self.tile_queries
        tokens = tile_tokens((self.h, self.w), tile, pairs.device)[plan.tiles]  # (U, T, th*tw)
        self.query_rows = (pairs[plan.pair, 0, None, None] * s + tokens).reshape(-1, self.queries)  # into (F*S, D)
        self.out_rows = (plan.pair[:, None, None] * s + tokens).reshape(-1)  # into the outputs (N*S, 2)
        self.key_base = pairs[plan.pair, 1] * s + plan.corners[:, 0] * self.w + plan.corners[:, 1]  # (U,)
        self.block_rows = torch.arange(er, device=pairs.device)
        self.block_cols = torch.arange(ec, device=pairs.device)
        local = torch.stack(torch.meshgrid(self.block_rows, self.block_cols, indexing="ij"), dim=-1)
        self.local_pos = local.reshape(-1, 2).to(work)  # (Bk, 2)
        self.row_offsets = (self.block_rows[:, None] * self.w + self.block_cols).reshape(-1)  # (Bk,)
        per_unit = work.itemsize * (3 * self.queries * self.keys + 2 * self.keys * self.d + 2 * self.queries * self.d)
        self.count = self.key_base.shape[0]
        self.chunk = max(1, min(self.count, chunk_bytes // per_unit))

    def chunks(self):
        for start in range(0, self.count, self.chunk):
            yield slice(start, min(start + self.chunk, self.count))

    def buffers(self, backward: bool) -> dict[str, Tensor]:
        """Work buffers for one chunk, reused by every chunk."""
        c, m, bk, d = self.chunk, self.queries, self.keys, self.d
        shapes = {"queries": (c, m, d), "keys": (c, bk, d), "logits": (c, m, bk), "probs": (c, m, bk)}
        if backward:
            shapes.update({"dlogits": (c, m, bk), "grad_queries": (c, m, d), "grad_keys": (c, bk, d)})
        device = self.key_base.device
        return {name: torch.empty(shape, dtype=self.work, device=device) for name, shape in shapes.items()}

    def gather(self, queries: Tensor, keys: Tensor, part: slice, buffers: dict[str, Tensor]):
        """The chunk's queries (C, M, D), rows into ``q``, block keys (C, Bk, D) and rows into ``k``."""
        c = part.stop - part.start
        rows_q = self.query_rows[part].reshape(-1)
        rows_k = (self.key_base[part, None] + self.row_offsets).reshape(-1)
        unit_queries = torch.index_select(queries, 0, rows_q, out=buffers["queries"][:c].view(-1, self.d))
        block_keys = torch.index_select(keys, 0, rows_k, out=buffers["keys"][:c].view(-1, self.d))
        return unit_queries.view(c, self.queries, self.d), rows_q, block_keys.view(c, self.keys, self.d), rows_k

    def probabilities(self, queries: Tensor, keys: Tensor, part: slice, buffers, out: Tensor) -> Tensor:
        """Softmax over each unit's block of its queries' logits, ``-inf`` outside each tile's window."""
        c = part.stop - part.start
        logits = torch.bmm(queries, keys.transpose(1, 2), out=buffers["logits"][:c])
        if self.plan.needs_mask(self.extent):
            offsets = self.plan.offsets[part]  # (C, T, 2)
            rows = _outside(self.block_rows, offsets[..., 0], self.extent[0], logits.dtype)  # (C, T, Er)
            cols = _outside(self.block_cols, offsets[..., 1], self.extent[1], logits.dtype)  # (C, T, Ec)
            bias = (rows[..., :, None] + cols[..., None, :]).view(c, -1, 1, self.keys)
            logits.view(c, -1, self.tile_queries, self.keys).add_(bias)
        return torch.softmax(logits, dim=-1, out=out)


def _forward_level(units: _Units, queries: Tensor, keys: Tensor, saved: Tensor | None) -> Tensor:
    """Expected position (U, M, 2) of every unit's queries, local to its block (``queries`` pre-scaled).

    ``saved`` (U, M, Bk), if given, receives the probabilities for the backward.
    """
    local = torch.empty(units.count, units.queries, 2, dtype=keys.dtype, device=keys.device)
    buffers = units.buffers(backward=False)
    for part in units.chunks():
        c = part.stop - part.start
        unit_queries, _, block_keys, _ = units.gather(queries, keys, part, buffers)
        out = saved[part] if saved is not None else buffers["probs"][:c]
        probs = units.probabilities(unit_queries, block_keys, part, buffers, out)
        torch.matmul(probs, units.local_pos, out=local[part])
    return local


def _backward_level(units, queries, keys, local, grads, saved, grad_queries, grad_keys) -> None:
    """Adds one level's gradients w.r.t. the (pre-scaled) queries and the keys; ``grads`` (U, M, 2)."""
    # dlogit[s, (r, c)] = p * (g_row * (r - out_row) + g_col * (c - out_col)), all local to the block
    row_terms = grads[..., :1] * (units.block_rows.to(local.dtype) - local[..., :1])  # (U, M, Er)
    col_terms = grads[..., 1:] * (units.block_cols.to(local.dtype) - local[..., 1:])  # (U, M, Ec)
    er, ec = units.plan.block
    buffers = units.buffers(backward=True)
    for part in units.chunks():
        c = part.stop - part.start
        unit_queries, rows_q, block_keys, rows_k = units.gather(queries, keys, part, buffers)
        if saved is None:
            probs = units.probabilities(unit_queries, block_keys, part, buffers, buffers["probs"][:c])
        else:
            probs = saved[part]
        dlogits = buffers["dlogits"][:c]
        torch.add(row_terms[part, :, :, None], col_terms[part, :, None, :], out=dlogits.view(c, -1, er, ec))
        dlogits.mul_(probs)
        if grad_queries is not None:
            step = torch.bmm(dlogits, block_keys, out=buffers["grad_queries"][:c])
            grad_queries.index_add_(0, rows_q, step.view(-1, units.d))
        if grad_keys is not None:
            step = torch.bmm(dlogits.transpose(1, 2), unit_queries, out=buffers["grad_keys"][:c])
            grad_keys.index_add_(0, rows_k, step.view(-1, units.d))


class _WindowedPositions(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, pairs, levels, tile, extent, scale, chunk_bytes, save_bytes):
        work = torch.promote_types(q.dtype, torch.float32)
        f, h, w, d = q.shape
        n = pairs.shape[0]
        queries = (q.to(work) * scale).reshape(-1, d)
        keys = k.to(work).reshape(-1, d)
        positions = torch.empty(n * h * w, 2, dtype=work, device=q.device)
        all_units = [_Units(plan, pairs, q.shape, tile, extent, work, chunk_bytes) for plan in levels]
        probs_bytes = sum(u.count * u.queries * u.keys for u in all_units) * work.itemsize
        keep = any(ctx.needs_input_grad[:2]) and probs_bytes <= save_bytes
        locals_, saved = [], []
        for units, plan in zip(all_units, levels):
            store = torch.empty(units.count, units.queries, units.keys, dtype=work, device=q.device) if keep else None
            local = _forward_level(units, queries, keys, store)
            positions.index_copy_(0, units.out_rows, (local + plan.corners[:, None, :].to(work)).view(-1, 2))
            locals_.append(local)
            saved.append(store)
        ctx.save_for_backward(q, k, *locals_)
        ctx.units, ctx.saved, ctx.scale = all_units, saved, scale
        return positions.view(n, h * w, 2).to(q.dtype)

    @staticmethod
    def backward(ctx, grad_positions):
        q, k, *locals_ = ctx.saved_tensors
        scale, work = ctx.scale, locals_[0].dtype
        d = q.shape[-1]
        want_q, want_k = ctx.needs_input_grad[:2]
        queries = (q.to(work) * scale).reshape(-1, d)
        keys = k.to(work).reshape(-1, d)
        grad_flat = grad_positions.to(work).reshape(-1, 2)
        grad_queries = torch.zeros_like(queries) if want_q else None
        grad_keys = torch.zeros_like(keys) if want_k else None
        for units, local, saved in zip(ctx.units, locals_, ctx.saved):
            grads = grad_flat.index_select(0, units.out_rows).view(units.count, units.queries, 2)
            _backward_level(units, queries, keys, local, grads, saved, grad_queries, grad_keys)
        grad_q = (grad_queries * scale).view(q.shape).to(q.dtype) if want_q else None
        grad_k = grad_keys.view(k.shape).to(k.dtype) if want_k else None
        return grad_q, grad_k, None, None, None, None, None, None, None


def windowed_positions(
    q: Tensor,
    k: Tensor,
    pairs: Tensor,
    starts: Tensor,
    tile: tuple[int, int],
    extent: tuple[int, int],
    scale: float,
    *,
    chunk_bytes: int,
    save_bytes: int,
    layout: tuple[int, int, int] | None = None,
) -> Tensor:
    """Expected key position (N, S, 2) of every query over its tile's window (see ``AMFBackend``).

    ``layout = (tiles per unit, bucket rows, bucket cols)`` forces the packing (tests); by default the planner
    picks the cheapest.
    """
    levels = plan_windows(starts, (q.shape[1], q.shape[2]), tile, extent, layout=layout)
    return _WindowedPositions.apply(
        q, k, pairs, levels, tuple(tile), tuple(extent), float(scale), chunk_bytes, save_bytes
    )
