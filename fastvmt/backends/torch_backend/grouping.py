"""Plans for the windowed AMF: tiles with nearby windows packed into units that share one key block.

Each tile's window is an ``e_r x e_c`` block of keys at a data-dependent corner. Computing tiles one by one is
a batch of tiny GEMMs (``th * tw`` queries each) and a copy of every window's keys. Packing ``T`` tiles whose
windows lie close together into one *unit* with a shared *block* of keys gives ``T`` times bigger GEMMs and
``T`` times fewer key copies, at the price of the logits outside each tile's window (masked to ``-inf``).

Tiles are packed by where their windows are, not where the tiles are: the window corners of each frame pair
fall in ``b_r x b_c`` buckets (a bucket's windows fit an ``(e_r + b_r - 1) x (e_c + b_c - 1)`` block). A bucket
of ``n`` tiles makes ``n // T`` units of ``T`` tiles, and its remainder is split by its binary digits into
units of ``T/2, T/4, ..., 1`` tiles, so no unit is padded. Smooth motion fills buckets; noisy coarse matches
scatter tiles over many buckets, and then small buckets or small ``T`` win. :func:`plan_windows` scores
``(T, b_r, b_c)`` with a cost model and returns the cheapest plan, one *level* per unit size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Int
from torch import Tensor

__all__ = ["WindowPlan", "plan_windows"]

#: Tiles per unit (powers of two), and bucket sides (in window-corner positions), the planner tries.
TILES_PER_UNIT = (1, 2, 4, 8, 16)
BUCKET_SIDES = (1, 2, 3, 4, 6, 8, 12)
#: Largest number of queries a unit may hold.
MAX_UNIT_QUERIES = 256
#: Cost model, per (unit, block key): ``queries + KEY_ROW_COST``. Moving a key row (gather, gradient scatter),
#: the per-unit overheads and the poor efficiency of small GEMMs cost about as much as multiplying the key
#: with this many more queries (measured on a 2-core AVX-512 CPU with MKL). It is why packing pays.
KEY_ROW_COST = 64


@dataclass(frozen=True)
class WindowPlan:
    """One level: units of ``T`` tiles sharing an ``E_r x E_c`` key block.

    Per unit: ``pair`` (U,), ``tiles`` (U, T) tile indices (raster order of the tile grid), ``corners`` (U, 2)
    the block's top-left key, ``offsets`` (U, T, 2) each tile's window corner relative to it.
    """

    block: tuple[int, int]
    pair: Int[Tensor, " u"]
    tiles: Int[Tensor, "u t"]
    corners: Int[Tensor, "u 2"]
    offsets: Int[Tensor, "u t 2"]

    @property
    def tiles_per_unit(self) -> int:
        return self.tiles.shape[1]

    def needs_mask(self, extent: tuple[int, int]) -> bool:
        """False when every window is its whole block (then all offsets are zero: nothing to mask)."""
        return self.block != tuple(extent)


def _bucket_ids(starts: Tensor, bucket: tuple[int, int]) -> Tensor:
    """(N, P) bucket id of every tile's window corner, unique across pairs."""
    n = starts.shape[0]
    rows, cols = starts[..., 0] // bucket[0], starts[..., 1] // bucket[1]
    height = int(rows.max()) + 1 if rows.numel() else 1
    width = int(cols.max()) + 1 if cols.numel() else 1
    pair = torch.arange(n, device=starts.device)[:, None]
    return (pair * height + rows) * width + cols


def _block(extent, bucket, size) -> tuple[int, int]:
    return min(extent[0] + bucket[0] - 1, size[0]), min(extent[1] + bucket[1] - 1, size[1])


def _unit_counts(counts: Tensor, tiles_per_unit: int) -> list[tuple[int, int]]:
    """``(T_l, units)`` per level for buckets of ``counts`` tiles: full units, then the remainders' binary digits."""
    levels = [(tiles_per_unit, int((counts // tiles_per_unit).sum()))]
    remainder = counts % tiles_per_unit
    size = tiles_per_unit // 2
    while size:
        levels.append((size, int(((remainder & size) != 0).sum())))
        size //= 2
    return levels


def _choose(starts, size, tile, extent) -> tuple[int, tuple[int, int]]:
    tile_queries = tile[0] * tile[1]
    best, best_cost = (1, (1, 1)), math.inf
    for bucket in sorted({(min(br, size[0]), min(bc, size[1])) for br in BUCKET_SIDES for bc in BUCKET_SIDES}):
        er, ec = _block(extent, bucket, size)
        counts = torch.bincount(_bucket_ids(starts, bucket).reshape(-1))
        counts = counts[counts > 0]
        for tiles_per_unit in TILES_PER_UNIT:
            if tiles_per_unit > 1 and tiles_per_unit * tile_queries > MAX_UNIT_QUERIES:
                break
            cost = 0
            for t, units in _unit_counts(counts, tiles_per_unit):
                keys = extent[0] * extent[1] if t == 1 else er * ec  # a tile alone gets its exact window
                cost += units * keys * (t * tile_queries + KEY_ROW_COST)
            if cost < best_cost:
                best, best_cost = (tiles_per_unit, bucket), cost
    return best


def _level(starts, flat_tiles, extent, size) -> WindowPlan:
    """A level from its units' tiles, as flat (pair * P + tile) indices (U, T); the block is the smallest that
    holds every unit's windows."""
    p = starts.shape[1]
    corners_of_tiles = starts.reshape(-1, 2)[flat_tiles]  # (U, T, 2)
    spread = (corners_of_tiles.amax(dim=1) - corners_of_tiles.amin(dim=1)).amax(dim=0).tolist()
    block = (min(extent[0] + spread[0], size[0]), min(extent[1] + spread[1], size[1]))
    limit = torch.tensor([size[0] - block[0], size[1] - block[1]], device=starts.device)
    corners = torch.minimum(corners_of_tiles.amin(dim=1), limit)
    return WindowPlan(
        block=block,
        pair=flat_tiles[:, 0] // p,
        tiles=flat_tiles % p,
        corners=corners,
        offsets=corners_of_tiles - corners[:, None, :],
    )


def plan_windows(
    starts: Int[Tensor, "n p 2"],
    size: tuple[int, int],
    tile: tuple[int, int],
    extent: tuple[int, int],
    *,
    layout: tuple[int, int, int] | None = None,
) -> list[WindowPlan]:
    """The cheapest packing of tiles into units, one level per unit size (largest first).

    ``layout = (T, b_r, b_c)`` forces the packing (tests, benchmarks); ``T`` is rounded down to a power of
    two. Every tile of every pair belongs to exactly one unit of one level.
    """
    if layout is None:
        tiles_per_unit, bucket = _choose(starts, size, tile, extent)
    else:
        tiles_per_unit, bucket = 1 << (max(layout[0], 1).bit_length() - 1), (layout[1], layout[2])
    ids = _bucket_ids(starts, bucket).reshape(-1)
    order = torch.argsort(ids, stable=True)  # tiles of a bucket are consecutive
    ids = ids[order]
    index = torch.arange(ids.numel(), device=ids.device)
    first = torch.ones_like(ids, dtype=torch.bool)
    first[1:] = ids[1:] != ids[:-1]
    bucket_start = torch.cummax(torch.where(first, index, 0), dim=0).values
    rank = index - bucket_start  # position inside the bucket
    which = torch.cumsum(first.long(), 0) - 1  # bucket number of each sorted tile
    count = torch.bincount(which)[which]  # tiles in this tile's bucket
    full = (count // tiles_per_unit) * tiles_per_unit
    # every tile gets (level size, start of its unit inside the bucket); full units first, then the remainder's
    # binary digits, largest first
    unit_size = torch.full_like(rank, tiles_per_unit)
    unit_start = (rank // tiles_per_unit) * tiles_per_unit
    remainder, offset = count - full, full.clone()
    size_l = tiles_per_unit // 2
    while size_l:
        has = (remainder & size_l) != 0
        here = has & (rank >= offset) & (rank < offset + size_l)
        unit_size = torch.where(here, size_l, unit_size)
        unit_start = torch.where(here, offset, unit_start)
        offset = offset + has * size_l
        size_l //= 2
    levels = []
    for level_size in sorted(set(unit_size.tolist()), reverse=True):
        chosen = unit_size == level_size
        # consecutive tiles of one unit: the sort keeps bucket order and ranks, so units are contiguous runs
        flat = order[chosen].view(-1, level_size)
        levels.append(_level(starts, flat, extent, size))
    return levels
