"""Wall-clock comparison of dense and windowed AMF (forward + backward) on this machine."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from fastvmt import ops

__all__ = ["AMFTiming", "time_amf"]


@dataclass(frozen=True)
class AMFTiming:
    """Median seconds of one forward + backward of each AMF on random ``(F, H, W, D)`` features."""

    shape: tuple[int, int, int, int]
    backend: str
    dense_seconds: float
    windowed_seconds: float

    @property
    def speedup(self) -> float:
        return self.dense_seconds / self.windowed_seconds

    def to_dict(self) -> dict:
        return {**asdict(self), "speedup": self.speedup}


def _median_seconds(run: Callable[[], None], repeats: int) -> float:
    run()  # warm-up: allocations, kernel selection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_amf(
    shape: tuple[int, int, int, int] = (9, 30, 52, 128),
    *,
    sf: int = ops.DEFAULT_SPAN,
    tile: tuple[int, int] = ops.DEFAULT_TILE,
    window: int = ops.DEFAULT_WINDOW,
    backend: str = "torch",
    repeats: int = 3,
    seed: int = 0,
) -> AMFTiming:
    """Time dense and windowed AMF forward + backward at ``shape`` (default: a 480x832 frame grid)."""
    generator = torch.Generator().manual_seed(seed)
    q = torch.randn(shape, generator=generator).requires_grad_(True)
    k = torch.randn(shape, generator=generator).requires_grad_(True)

    def dense() -> None:
        ops.full_amf(q, k, sf=sf, backend=backend).sum().backward()

    def windowed() -> None:
        ops.windowed_amf(q, k, sf=sf, tile=tile, window=window, backend=backend).displacement.sum().backward()

    return AMFTiming(shape, backend, _median_seconds(dense, repeats), _median_seconds(windowed, repeats))
