"""The contract every AMF backend implements.

Backends compute *expected key positions* ("attention with V = pos"); the ops in :mod:`fastvmt.ops` check
arguments, choose the backend and turn positions into displacements. Shapes, with ``S = H * W``:

- ``q``, ``k``: ``(F, H, W, D)``; ``pairs``: ``(N, 2)`` long, rows ``(i, j)`` = (query frame, key frame).
- ``scale``: the logit factor, ``tau / sqrt(D)`` for the spec's AMF.
- Positions are global ``(row, col)`` token coordinates as floats in ``q``'s dtype.

Every method must be differentiable w.r.t. ``q`` and ``k`` where it says so; the reference backend is the
oracle the others are tested against.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

__all__ = ["AMFBackend", "Case"]


@dataclass(frozen=True)
class Case:
    """What a backend is asked to run, for its capability check."""

    op: str
    device: torch.device
    dtype: torch.dtype
    shape: tuple[int, ...]
    requires_grad: bool


class AMFBackend(ABC):
    """A set of AMF kernels. Subclasses set ``name`` and implement the abstract methods."""

    name: str = ""
    #: Ops this backend implements (``dense``, ``dense_argmax``, ``windowed``, ``key_means``).
    ops: frozenset[str] = frozenset({"dense", "dense_argmax", "windowed", "key_means"})

    def supports(self, case: Case) -> tuple[bool, str]:
        """``(True, "")`` if this backend can run ``case``, else ``(False, reason)``."""
        if case.op not in self.ops:
            return False, f"op {case.op!r} not implemented"
        return True, ""

    @abstractmethod
    def dense_positions(
        self,
        q: Float[Tensor, "f sq d"],
        k: Float[Tensor, "f h w d"],
        pairs: Int[Tensor, "n 2"],
        scale: float,
    ) -> Float[Tensor, "n sq 2"]:
        """Expected key position of each query of frame ``i`` over all keys of frame ``j``.

        ``q`` holds any ``sq`` queries per frame (all ``S`` tokens, or the tiles' representatives).
        Differentiable w.r.t. ``q`` and ``k``.
        """

    @abstractmethod
    def dense_argmax_positions(
        self,
        q: Float[Tensor, "f sq d"],
        k: Float[Tensor, "f h w d"],
        pairs: Int[Tensor, "n 2"],
    ) -> Float[Tensor, "n sq 2"]:
        """Position of each query's highest-scoring key in frame ``j`` (ties: lowest raster index). No gradient."""

    @abstractmethod
    def windowed_positions(
        self,
        q: Float[Tensor, "f h w d"],
        k: Float[Tensor, "f h w d"],
        pairs: Int[Tensor, "n 2"],
        starts: Int[Tensor, "n p 2"],
        tile: tuple[int, int],
        extent: tuple[int, int],
        scale: float,
    ) -> Float[Tensor, "n s 2"]:
        """Expected key position of each query over the window of its tile, in raster order of queries.

        Tile ``p`` (raster order over the ``H/th x W/tw`` tile grid) owns the queries of its ``th x tw`` block;
        its window is the ``extent[0] x extent[1]`` block of keys of frame ``j`` whose top-left corner is
        ``starts[n, p]`` (always in bounds). Differentiable w.r.t. ``q`` and ``k``.
        """

    def window_key_means(
        self,
        k: Float[Tensor, "f h w d"],
        pairs: Int[Tensor, "n 2"],
        starts: Int[Tensor, "n p 2"],
        extent: tuple[int, int],
    ) -> Float[Tensor, "n p d"]:
        """Mean key of each window, differentiable w.r.t. ``k``.

        This default uses a summed-area table per frame, ``O(F*S*D + N*P*D)``, computed in float32 at least.
        """
        eh, ew = extent
        work = torch.promote_types(k.dtype, torch.float32)
        table = torch.nn.functional.pad(k.to(work).cumsum(1).cumsum(2), (0, 0, 1, 0, 1, 0))  # (F, H+1, W+1, D)
        frames = pairs[:, 1, None]  # (N, 1)
        r0, c0 = starts[..., 0], starts[..., 1]
        r1, c1 = r0 + eh, c0 + ew
        total = table[frames, r1, c1] - table[frames, r0, c1] - table[frames, r1, c0] + table[frames, r0, c0]
        return (total / (eh * ew)).to(k.dtype)
