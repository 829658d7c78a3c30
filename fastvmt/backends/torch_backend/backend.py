"""The ``torch`` backend class: capability check and the contract's methods."""

from __future__ import annotations

from fastvmt.backends.base import AMFBackend, Case
from fastvmt.backends.torch_backend import dense, windowed

__all__ = ["TorchBackend"]

#: Default bound on the temporary tensors of one chunk of frame pairs.
CHUNK_BYTES = 64 << 20


class TorchBackend(AMFBackend):
    """Plain torch on any device torch runs on; floating dtypes (half types compute in float32).

    ``chunk_bytes`` bounds the temporaries of one chunk of pairs (the outputs and what autograd saves are
    ``O(N * S)`` on top). ``group`` forces the windowed op's tile-group shape (tests); ``None`` lets the planner
    choose.
    """

    name = "torch"

    def __init__(self, chunk_bytes: int = CHUNK_BYTES, group: tuple[int, int] | None = None):
        if chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
        self.chunk_bytes, self.group = chunk_bytes, group

    def supports(self, case: Case) -> tuple[bool, str]:
        ok, reason = super().supports(case)
        if ok and not case.dtype.is_floating_point:
            return False, f"dtype {case.dtype} is not a floating dtype"
        return ok, reason

    def dense_positions(self, q, k, pairs, scale):
        return dense.dense_positions(q, k, pairs, scale, chunk_bytes=self.chunk_bytes)

    def dense_argmax_positions(self, q, k, pairs):
        return dense.dense_argmax_positions(q, k, pairs, chunk_bytes=self.chunk_bytes)

    def windowed_positions(self, q, k, pairs, starts, tile, extent, scale):
        return windowed.windowed_positions(
            q, k, pairs, starts, tile, extent, scale, chunk_bytes=self.chunk_bytes, group=self.group
        )
