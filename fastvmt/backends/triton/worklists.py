"""Work lists of the atomic-free backward kernels, built on the device with torch (no kernel, no host loop).

Each list is grouped by the gradient block it feeds, in a fixed (ascending) order inside a group, so that a
kernel program owning one gradient block sums the same terms in the same order on every run.
"""

from __future__ import annotations

import torch
from jaxtyping import Int
from torch import Tensor

__all__ = ["key_block_entries", "pairs_by_frame"]


def _group_offsets(groups: Int[Tensor, " e"], count: int) -> Int[Tensor, " g1"]:
    """``offsets[g]:offsets[g + 1]`` is group ``g``'s range in the entries sorted by group (``count + 1`` ints)."""
    offsets = torch.zeros(count + 1, dtype=torch.long, device=groups.device)
    offsets[1:] = torch.bincount(groups, minlength=count).cumsum(0)
    return offsets


def pairs_by_frame(frames: Int[Tensor, " n"], count: int) -> tuple[Int[Tensor, " n"], Int[Tensor, " f1"]]:
    """Pair indices sorted by ``frames`` (the pairs' query or key frame; ties in pair order) and each frame's
    range ``offsets[f]:offsets[f + 1]`` in them, for ``count`` frames."""
    order = torch.sort(frames, stable=True).indices
    return order.contiguous(), _group_offsets(frames, count)


def key_block_entries(
    starts: Int[Tensor, "n p 2"],
    key_frames: Int[Tensor, " n"],
    frames: int,
    grid: tuple[int, int],
    tile: tuple[int, int],
    extent: tuple[int, int],
    query_block: tuple[int, int],
    key_block: tuple[int, int],
) -> tuple[Int[Tensor, "e 2"], Int[Tensor, " g1"]]:
    """(pair, query block) entries whose windows' bounding box crosses each key rectangle, and group ranges.

    Query blocks are the ``query_block`` (rows x cols of tokens) pieces of the ``grid`` in raster order, key
    rectangles the ``key_block`` pieces; the tiles of a query block read the keys of frame ``key_frames[pair]``
    inside the box of their windows (``starts`` corners, ``extent`` size). Entries are grouped by
    ``key frame * rectangles + rectangle`` (``offsets`` has ``frames * rectangles + 1`` ints) and ordered by
    (pair, query block) inside a group.
    """
    (h, w), (th, tw), (qh, qw), (kh, kw) = grid, tile, query_block, key_block
    n, device = starts.shape[0], starts.device
    blocks_h, blocks_w = -(-h // qh), -(-w // qw)
    rects_h, rects_w = -(-h // kh), -(-w // kw)
    # Window corner of every token (padded to whole query blocks by repeating the last row / column, which
    # lies in the same block), then each block's lowest and highest corner.
    rows = torch.arange(blocks_h * qh, device=device).clamp(max=h - 1)
    cols = torch.arange(blocks_w * qw, device=device).clamp(max=w - 1)
    tile_of_token = (rows // th)[:, None] * (w // tw) + (cols // tw)[None, :]
    corners = starts[:, tile_of_token.flatten()].view(n, blocks_h, qh, blocks_w, qw, 2)
    low, high = corners.amin(dim=(2, 4)), corners.amax(dim=(2, 4))
    size = torch.tensor([kh, kw], device=device)
    first = torch.div(low, size, rounding_mode="floor").view(-1, 2)
    last = torch.div(high + torch.tensor(extent, device=device) - 1, size, rounding_mode="floor").view(-1, 2)
    span = last - first + 1
    counts = span[:, 0] * span[:, 1]
    block = torch.repeat_interleave(torch.arange(counts.numel(), device=device), counts)
    local = torch.arange(block.numel(), device=device) - (counts.cumsum(0) - counts)[block]
    rect_r = first[block, 0] + torch.div(local, span[block, 1], rounding_mode="floor")
    rect_c = first[block, 1] + local % span[block, 1]
    pair = torch.div(block, blocks_h * blocks_w, rounding_mode="floor")
    group = key_frames[pair] * (rects_h * rects_w) + rect_r * rects_w + rect_c
    order = torch.sort(group, stable=True).indices
    entries = torch.stack([pair, block - pair * (blocks_h * blocks_w)], dim=1)[order].contiguous()
    return entries, _group_offsets(group, frames * rects_h * rects_w)
