"""Windowed AMF in plain torch: grouped tiles, batched GEMMs, a hand-written backward.

Per chunk of frame pairs (bounded memory whatever the number of pairs), with tiles grouped by
:func:`~fastvmt.backends.torch_backend.grouping.plan_groups`:

1. the keys of each group's block are gathered once (one ``index_select`` of rows);
2. logits = one batched GEMM (group queries x block keys), logits outside each tile's window set to ``-inf``;
3. softmax statistics; expected *local* position = ``exp(logits - max) @ pos / sum``; the log-sum-exp is kept.

The backward recomputes the probabilities from the saved log-sum-exp (flash-attention style) and uses
``dlogit[s, m] = p[s, m] * <g[s], pos(m) - out[s]>`` (attention with ``V = pos``), then two batched GEMMs give
the query and block-key gradients; block-key gradients go back to their rows with ``index_add_``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from fastvmt.backends.torch_backend.grouping import GroupPlan, plan_groups

__all__ = ["windowed_positions"]


def _grouped(x: Tensor, plan: GroupPlan, tile: tuple[int, int]) -> Tensor:
    """``x`` (B, H, W, C) as (B, G, M, C): each group's ``gh*th x gw*tw`` block of tokens, raster order inside.

    The grid is zero-padded up to whole groups.
    """
    b, h, w, c = x.shape
    (gh, gw), (grid_h, grid_w) = plan.group, plan.grid
    bh, bw = gh * tile[0], gw * tile[1]
    x = F.pad(x, (0, 0, 0, grid_w * bw - w, 0, grid_h * bh - h))
    x = x.view(b, grid_h, bh, grid_w, bw, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, grid_h * grid_w, bh * bw, c)


def _ungrouped(x: Tensor, plan: GroupPlan, tile: tuple[int, int], size: tuple[int, int]) -> Tensor:
    """Inverse of :func:`_grouped`: (B, G, M, C) -> (B, H, W, C), padding dropped."""
    b, c = x.shape[0], x.shape[-1]
    (gh, gw), (grid_h, grid_w) = plan.group, plan.grid
    bh, bw = gh * tile[0], gw * tile[1]
    x = x.view(b, grid_h, grid_w, bh, bw, c).permute(0, 1, 3, 2, 4, 5).reshape(b, grid_h * bh, grid_w * bw, c)
    return x[:, : size[0], : size[1]]


class _Windowed:
    """Shapes and per-chunk helpers of one windowed call (shared by the forward and the backward).

    The work is a list of *units*, one per (frame pair, tile group): ``M`` queries against a block of ``Bk``
    keys. Units are processed in chunks whose temporaries fit ``chunk_bytes`` (small enough to stay in cache).
    """

    def __init__(self, shape, pairs, plan, tile, extent, work, chunk_bytes):
        self.frames, self.h, self.w, self.d = shape
        self.plan, self.tile, self.extent = plan, tile, extent
        er, ec = plan.block
        self.keys, self.queries = er * ec, plan.queries_per_group(tile)
        device = pairs.device
        groups = torch.arange(plan.num_groups, device=device)
        self.query_units = (pairs[:, :1] * plan.num_groups + groups).reshape(-1)  # row of (F*G, M, D) per unit
        self.corners = plan.corners.reshape(-1, 2)  # (U, 2)
        self.offsets = plan.offsets.reshape(-1, *plan.offsets.shape[2:])  # (U, gh, gw, 2)
        self.key_frames = pairs[:, 1].repeat_interleave(plan.num_groups)  # (U,)
        self.block_rows = torch.arange(er, device=device)
        self.block_cols = torch.arange(ec, device=device)
        local = torch.stack(torch.meshgrid(self.block_rows, self.block_cols, indexing="ij"), dim=-1)
        self.local_pos = local.reshape(-1, 2).to(work)  # (Bk, 2)
        self.row_offsets = (self.block_rows[:, None] * self.w + self.block_cols).reshape(-1)  # (Bk,)
        per_unit = work.itemsize * (2 * self.queries * self.keys + 2 * self.keys * self.d + self.queries * self.d)
        self.chunk = max(1, chunk_bytes // per_unit)
        self.units = self.query_units.shape[0]

    def chunks(self):
        for start in range(0, self.units, self.chunk):
            yield slice(start, min(start + self.chunk, self.units))

    def key_rows(self, part: slice) -> Tensor:
        """Flat row (into ``k.reshape(F*S, D)``) of every block key of the units, (C*Bk,)."""
        corners = self.corners[part]
        base = self.key_frames[part] * (self.h * self.w) + corners[:, 0] * self.w + corners[:, 1]
        return (base[:, None] + self.row_offsets).reshape(-1)

    def masked_logits(self, queries: Tensor, keys: Tensor, part: slice) -> Tensor:
        """(C, M, Bk) logits of each unit's queries against its block, ``-inf`` outside each tile's window."""
        logits = torch.bmm(queries, keys.transpose(1, 2))
        if not self.plan.needs_mask(self.extent):
            return logits
        offsets = self.offsets[part]  # (C, gh, gw, 2)
        rows = _outside(self.block_rows, offsets[..., 0], self.extent[0], logits.dtype)  # (C, gh, gw, Er)
        cols = _outside(self.block_cols, offsets[..., 1], self.extent[1], logits.dtype)  # (C, gh, gw, Ec)
        bias = rows[..., :, None] + cols[..., None, :]  # (C, gh, gw, Er, Ec): 0 inside the window, -inf outside
        (gh, gw), (th, tw), (er, ec) = self.plan.group, self.tile, self.plan.block
        logits.view(-1, gh, th, gw, tw, er, ec).add_(bias[:, :, None, :, None])
        return logits


def _outside(coords: Tensor, offset: Tensor, extent: int, dtype: torch.dtype) -> Tensor:
    """0 where ``offset <= coords < offset + extent``, ``-inf`` elsewhere, (..., len(coords))."""
    inside = (coords >= offset[..., None]) & (coords < offset[..., None] + extent)
    return torch.zeros(inside.shape, dtype=dtype, device=coords.device).masked_fill_(~inside, float("-inf"))


class _WindowedPositions(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, pairs, plan, tile, extent, scale, chunk_bytes):
        work = torch.promote_types(q.dtype, torch.float32)
        geo = _Windowed(q.shape, pairs, plan, tile, extent, work, chunk_bytes)
        m, d = geo.queries, geo.d
        queries = _grouped(q.to(work) * scale, plan, tile).reshape(-1, m, d)  # (F*G, M, D), scaled once
        keys = k.to(work).reshape(-1, d)
        local = torch.empty(geo.units, m, 2, dtype=work, device=q.device)
        for part in geo.chunks():
            unit_queries = queries.index_select(0, geo.query_units[part])
            block_keys = keys.index_select(0, geo.key_rows(part)).view(-1, geo.keys, d)
            probs = geo.masked_logits(unit_queries, block_keys, part).softmax(dim=-1)
            torch.matmul(probs, geo.local_pos, out=local[part])
        ctx.save_for_backward(q, k, local)
        ctx.geo, ctx.scale = geo, scale
        positions = (local + geo.corners[:, None, :].to(work)).view(pairs.shape[0], plan.num_groups, m, 2)
        return _ungrouped(positions, plan, tile, (geo.h, geo.w)).reshape(pairs.shape[0], -1, 2).to(q.dtype)

    @staticmethod
    def backward(ctx, grad_positions):
        q, k, local = ctx.saved_tensors
        geo, scale = ctx.geo, ctx.scale
        plan, work, m, d = geo.plan, local.dtype, geo.queries, geo.d
        (gh, gw), (th, tw), (er, ec) = plan.group, geo.tile, plan.block
        want_q, want_k = ctx.needs_input_grad[:2]
        queries = _grouped(q.to(work) * scale, plan, geo.tile).reshape(-1, m, d)
        keys = k.to(work).reshape(-1, d)
        grads = _grouped(grad_positions.to(work).reshape(-1, geo.h, geo.w, 2), plan, geo.tile).reshape(-1, m, 2)
        # dlogit[s, (r, c)] = p * (g_row * (r - out_row) + g_col * (c - out_col)), all local to the block
        row_terms = grads[..., :1] * (geo.block_rows.to(work) - local[..., :1])  # (U, M, Er)
        col_terms = grads[..., 1:] * (geo.block_cols.to(work) - local[..., 1:])  # (U, M, Ec)
        grad_queries = torch.zeros_like(queries) if want_q else None
        grad_keys = torch.zeros_like(keys) if want_k else None
        for part in geo.chunks():
            unit_queries = queries.index_select(0, geo.query_units[part])
            rows = geo.key_rows(part)
            block_keys = keys.index_select(0, rows).view(-1, geo.keys, d)
            probs = geo.masked_logits(unit_queries, block_keys, part).softmax(dim=-1)
            centred = row_terms[part, :, :, None] + col_terms[part, :, None, :]  # (C, M, Er, Ec)
            dlogits = probs.mul_(centred.view_as(probs))
            if want_q:
                grad_queries.index_add_(0, geo.query_units[part], torch.bmm(dlogits, block_keys))
            if want_k:
                grad_keys.index_add_(0, rows, torch.bmm(dlogits.transpose(1, 2), unit_queries).view(-1, d))
        grad_q = grad_k = None
        if want_q:
            grouped = grad_queries.view(geo.frames, plan.num_groups, m, d)
            grad_q = (_ungrouped(grouped, plan, geo.tile, (geo.h, geo.w)) * scale).to(q.dtype)
        if want_k:
            grad_k = grad_keys.view(k.shape).to(k.dtype)
        return grad_q, grad_k, None, None, None, None, None, None


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
    group: tuple[int, int] | None = None,
) -> Tensor:
    """Expected key position (N, S, 2) of every query over its tile's window (see ``AMFBackend``).

    ``group`` forces a group shape (tests); by default the planner picks the cheapest.
    """
    plan = plan_groups(starts, (q.shape[1], q.shape[2]), tile, extent, group=group)
    return _WindowedPositions.apply(q, k, pairs, plan, tuple(tile), tuple(extent), float(scale), chunk_bytes)
