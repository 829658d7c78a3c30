"""The ``torch`` backend class: capability check and the contract's methods."""

from __future__ import annotations

import torch

from fastvmt.backends.base import AMFBackend, Case
from fastvmt.backends.torch_backend import dense, windowed

__all__ = ["TorchBackend"]

#: Default bound on the temporary tensors of one chunk of work.
CHUNK_BYTES = 64 << 20
#: Default bound on the attention probabilities a forward keeps for its backward (beyond it, the backward
#: recomputes them: one more GEMM per chunk, no memory).
SAVE_BYTES = 1536 << 20
DENSE_KERNELS = ("gemm", "sdpa")


class TorchBackend(AMFBackend):
    """Plain torch on any device torch runs on; floating dtypes (half types compute in float32).

    ``chunk_bytes`` bounds the temporaries of one chunk of work; ``save_bytes`` what a forward keeps for its
    backward beyond ``O(N * S)`` outputs (probabilities; more would be recomputed). ``dense_kernel``: ``"gemm"``
    or ``"sdpa"`` (:mod:`.dense`). ``layout = (tiles per unit, bucket rows, bucket cols)`` forces how the
    windowed op packs tiles (tests, benchmarks); ``None`` lets the planner choose (:mod:`.grouping`).
    """

    name = "torch"

    def __init__(
        self,
        chunk_bytes: int = CHUNK_BYTES,
        save_bytes: int = SAVE_BYTES,
        dense_kernel: str = "gemm",
        layout: tuple[int, int, int] | None = None,
    ):
        if chunk_bytes < 1 or save_bytes < 0:
            raise ValueError(f"chunk_bytes must be > 0 and save_bytes >= 0, got {chunk_bytes} and {save_bytes}")
        if dense_kernel not in DENSE_KERNELS:
            raise ValueError(f"dense_kernel must be one of {DENSE_KERNELS}, got {dense_kernel!r}")
        self.chunk_bytes, self.save_bytes = chunk_bytes, save_bytes
        self.dense_kernel, self.layout = dense_kernel, layout

    def supports(self, case: Case) -> tuple[bool, str]:
        ok, reason = super().supports(case)
        if ok and not case.dtype.is_floating_point:
            return False, f"dtype {case.dtype} is not a floating dtype"
        return ok, reason

    def dense_positions(self, q, k, pairs, scale):
        if self.dense_kernel == "sdpa":
            return dense.dense_positions_sdpa(q, k, pairs, scale, chunk_bytes=self.chunk_bytes)
        return dense.dense_positions(q, k, pairs, scale, chunk_bytes=self.chunk_bytes, save_bytes=self.save_bytes)

    def dense_argmax_positions(self, q, k, pairs):
        return dense.dense_argmax_positions(q, k, pairs, chunk_bytes=self.chunk_bytes)

    def windowed_positions(self, q, k, pairs, starts, tile, extent, scale):
        return windowed.windowed_positions(
            q, k, pairs, starts, tile, extent, scale,
            chunk_bytes=self.chunk_bytes, save_bytes=self.save_bytes, layout=self.layout,
        )

    def window_key_means(self, k, pairs, starts, extent):
        """The base class's summed-area table, read with ``index_select`` (its backward is an ``index_add_``,
        much faster on CPU than the accumulating ``index_put_`` behind advanced indexing)."""
        f, h, w, d = k.shape
        eh, ew = extent
        work = torch.promote_types(k.dtype, torch.float32)
        table = torch.nn.functional.pad(k.to(work).cumsum(1).cumsum(2), (0, 0, 1, 0, 1, 0)).reshape(-1, d)
        frame = pairs[:, 1, None] * ((h + 1) * (w + 1))  # (N, 1)
        r0, c0 = starts[..., 0], starts[..., 1]
        corner = lambda r, c: table.index_select(0, (frame + r * (w + 1) + c).reshape(-1))  # noqa: E731
        total = corner(r0 + eh, c0 + ew) - corner(r0, c0 + ew) - corner(r0 + eh, c0) + corner(r0, c0)
        return (total / (eh * ew)).view(*starts.shape[:2], d).to(k.dtype)
