"""A gradient scheduler that spends a fixed number of fresh gradients where they matter most.

Inside a guided step the optimiser starts fresh, with its largest learning rate and the largest loss: the
latent moves most in the first iterations, so a cached gradient goes stale fastest there. Later iterations
refine, and reusing a gradient costs little. ``cosine_spaced`` places its computations along ``1 - cos``,
flat at the start (computations close together) and steep at the end (long reuse runs), and always computes
at the last iteration, so every guided step ends on a fresh gradient.
"""

from __future__ import annotations

import math
from functools import cache

from fastvmt.interfaces import GradientScheduler, InnerStep
from fastvmt.strategies.schedulers import guided_step_count

__all__ = ["CosineSpaced", "cosine_spaced_iterations"]


@cache
def cosine_spaced_iterations(computations: int, num_inner: int) -> frozenset[int]:
    """The inner iterations (of ``0 .. num_inner - 1``) that compute a gradient.

    ``n = min(computations, num_inner)`` distinct iterations: iteration ``m`` of ``n`` sits at
    ``round((num_inner - 1) * (1 - cos(pi/2 * m / (n - 1))))``, moved just enough to keep the iterations
    distinct; the first is 0 and, for ``n >= 2``, the last is ``num_inner - 1``. ``computations=4`` of 10
    iterations gives ``{0, 1, 4, 9}``.
    """
    if computations < 1 or num_inner < 1:
        raise ValueError(f"computations and num_inner must be >= 1, got {computations}, {num_inner}")
    n = min(computations, num_inner)
    if n == 1:
        return frozenset({0})
    chosen: list[int] = []
    for m in range(n):
        ideal = round((num_inner - 1) * (1 - math.cos(math.pi / 2 * m / (n - 1))))
        lowest = chosen[-1] + 1 if chosen else 0  # distinct from the previous one
        highest = num_inner - n + m  # leave room for the ones still to place
        chosen.append(min(max(ideal, lowest), highest))
    return frozenset(chosen)


class CosineSpaced(GradientScheduler):
    """Computes ``computations`` gradients per guided step at cosine-spaced iterations, reusing in between.

    Guides the first ``guided_fraction`` of the denoising steps, like the built-in schedulers. With the
    ``fastvmt`` preset's 10 iterations, ``computations=4`` computes at iterations 0, 1, 4 and 9: as many
    gradients as ``interval(3)`` (0, 3, 6, 9), two of them in the first two iterations.

    Args:
        computations: fresh gradients per guided step (at most the number of inner iterations).
        guided_fraction: share of the denoising steps, from the first, that are guided.
    """

    def __init__(self, computations: int = 4, guided_fraction: float = 0.2):
        if isinstance(computations, bool) or not isinstance(computations, int) or computations < 1:
            raise ValueError(f"computations must be an int >= 1, got {computations!r}")
        if not 0.0 <= guided_fraction <= 1.0:
            raise ValueError(f"guided_fraction must be in [0, 1], got {guided_fraction}")
        self.computations = computations
        self.guided_fraction = guided_fraction

    def is_guided(self, step: int, num_steps: int) -> bool:
        return step < guided_step_count(self.guided_fraction, num_steps)

    def should_compute(self, inner: InnerStep) -> bool:
        return inner.inner in cosine_spaced_iterations(self.computations, inner.num_inner)
