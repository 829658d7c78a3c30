"""Plans for the windowed AMF: neighbouring tiles grouped to share one key block.

Each tile's window is an ``e_r x e_c`` block of keys at a data-dependent corner. Computing tiles one by one is
a batch of tiny GEMMs (``th * tw`` queries each) plus a copy of every window's keys. Grouping ``gh x gw``
neighbouring tiles under one *block* that contains all their windows gives bigger GEMMs and fewer key copies,
at the price of the logits outside each tile's window (masked). Neighbouring tiles usually have nearby
windows, so the block is only a little larger than a window; when they do not, smaller groups win.

:func:`plan_groups` scores candidate group shapes with a cost model and returns the cheapest plan. All groups
of a plan share one block extent (``E_r x E_c``, the largest any group needs), so a chunk of groups is one
batched GEMM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Int
from torch import Tensor

__all__ = ["GroupPlan", "plan_groups"]

#: Largest group side, in tiles, that the planner tries.
MAX_GROUP_SIDE = 4
#: Cost-model constant: per key and group, moving a key row (gather + gradient scatter) costs about as much as
#: multiplying it with this many queries (measured on a 2-core AVX-512 CPU with MKL; on GPUs it is of the
#: same order). It is the reason grouping pays.
KEY_ROW_COST = 48
#: Largest number of queries a group may hold.
MAX_GROUP_QUERIES = 256


@dataclass(frozen=True)
class GroupPlan:
    """How tiles are grouped for one call.

    ``group`` = (gh, gw) tiles a group; ``grid`` = (Gh, Gw) groups (the tile grid is padded up to a multiple
    of the group shape; padded tiles copy the nearest real tile's window and their outputs are dropped);
    ``block`` = (E_r, E_c) key block extent; ``corners`` (N, G, 2) block corners; ``offsets`` (N, G, gh, gw, 2)
    each tile's window corner relative to its group's block corner.
    """

    group: tuple[int, int]
    grid: tuple[int, int]
    block: tuple[int, int]
    corners: Int[Tensor, "n g 2"]
    offsets: Int[Tensor, "n g gh gw 2"]

    @property
    def num_groups(self) -> int:
        return self.grid[0] * self.grid[1]

    def queries_per_group(self, tile: tuple[int, int]) -> int:
        return self.group[0] * tile[0] * self.group[1] * tile[1]

    def needs_mask(self, extent: tuple[int, int]) -> bool:
        """False when every window is its whole block (then all offsets are zero: nothing to mask)."""
        return self.block != tuple(extent)


def _padded_starts(starts: Tensor, tiles: tuple[int, int], group: tuple[int, int]) -> Tensor:
    """``starts`` (N, P, 2) as (N, Gh, gh, Gw, gw, 2), the tile grid padded by repeating its last row/column."""
    n = starts.shape[0]
    (ph, pw), (gh, gw) = tiles, group
    grid_h, grid_w = math.ceil(ph / gh), math.ceil(pw / gw)
    rows = torch.arange(grid_h * gh, device=starts.device).clamp_(max=ph - 1)
    cols = torch.arange(grid_w * gw, device=starts.device).clamp_(max=pw - 1)
    grid = starts.view(n, ph, pw, 2)[:, rows][:, :, cols]
    return grid.view(n, grid_h, gh, grid_w, gw, 2)


def _block_extent(padded: Tensor, extent: tuple[int, int], size: tuple[int, int]) -> tuple[int, int]:
    spread = (padded.amax(dim=(2, 4)) - padded.amin(dim=(2, 4))).amax(dim=(0, 1, 2))  # (2,)
    rows, cols = spread.tolist() if spread.numel() else (0, 0)
    return min(size[0], extent[0] + rows), min(size[1], extent[1] + cols)


def plan_groups(
    starts: Int[Tensor, "n p 2"],
    size: tuple[int, int],
    tile: tuple[int, int],
    extent: tuple[int, int],
    *,
    group: tuple[int, int] | None = None,
) -> GroupPlan:
    """The cheapest grouping of tiles for these window corners (or the given ``group`` shape)."""
    h, w = size
    tiles = (h // tile[0], w // tile[1])
    if group is None:
        group = _cheapest_group(starts, size, tile, extent, tiles)
    padded = _padded_starts(starts, tiles, group)
    block = _block_extent(padded, extent, size)
    low = padded.amin(dim=(2, 4))  # (N, Gh, Gw, 2)
    limit = torch.tensor([h - block[0], w - block[1]], device=starts.device)
    corners = torch.minimum(low, limit)
    offsets = padded - corners[:, :, None, :, None, :]  # (N, Gh, gh, Gw, gw, 2)
    n, grid_h, grid_w = corners.shape[:3]
    return GroupPlan(
        group=group,
        grid=(grid_h, grid_w),
        block=block,
        corners=corners.reshape(n, grid_h * grid_w, 2),
        offsets=offsets.permute(0, 1, 3, 2, 4, 5).reshape(n, grid_h * grid_w, group[0], group[1], 2),
    )


def _cheapest_group(
    starts: Tensor, size: tuple[int, int], tile: tuple[int, int], extent: tuple[int, int], tiles: tuple[int, int]
) -> tuple[int, int]:
    best, best_cost = (1, 1), math.inf
    for gh in range(1, min(MAX_GROUP_SIDE, tiles[0]) + 1):
        for gw in range(1, min(MAX_GROUP_SIDE, tiles[1]) + 1):
            queries = gh * tile[0] * gw * tile[1]
            if queries > MAX_GROUP_QUERIES and (gh, gw) != (1, 1):
                continue
            block = _block_extent(_padded_starts(starts, tiles, (gh, gw)), extent, size)
            groups = math.ceil(tiles[0] / gh) * math.ceil(tiles[1] / gw)
            cost = groups * block[0] * block[1] * (queries + KEY_ROW_COST)
            if cost < best_cost:
                best, best_cost = (gh, gw), cost
    return best
