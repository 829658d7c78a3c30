"""Which frame pairs the AMF is computed for (docs/algorithm.md#frame-pairs)."""

from __future__ import annotations

import torch
from jaxtyping import Int
from torch import Tensor

from fastvmt.ops.checks import check_frame_count, check_pairs_mode, check_span

__all__ = ["frame_pairs"]


def frame_pairs(
    num_frames: int, sf: int = 4, mode: str = "forward", device: torch.device | str | None = None
) -> Int[Tensor, "n 2"]:
    """Frame pairs ``(i, j)`` as a long tensor (N, 2), ordered ``i``-major then ``j`` ascending.

    ``mode="forward"``: ``i <= j < min(F, i + sf)`` (offset ``j - i`` in ``[0, sf - 1]``, N = sum_i min(sf, F - i);
    F = 21, sf = 4 gives 78). ``mode="all"``: every ordered pair, ``i == j`` included (DiTFlow; ``sf`` unused).
    """
    check_frame_count(num_frames)
    check_span(sf)
    check_pairs_mode(mode)
    i, j = torch.meshgrid(torch.arange(num_frames), torch.arange(num_frames), indexing="ij")
    pairs = torch.stack([i.reshape(-1), j.reshape(-1)], dim=1)
    if mode == "forward":
        offset = pairs[:, 1] - pairs[:, 0]
        pairs = pairs[(offset >= 0) & (offset < sf)]
    return pairs.to(device)
