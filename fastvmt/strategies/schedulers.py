"""Gradient schedulers: which denoising steps are guided, and compute-vs-reuse per inner iteration.

All are pure rules over step indices and the losses seen so far, so they are tested without a model.
"""

from __future__ import annotations

from collections.abc import Callable

from fastvmt.interfaces import GradientScheduler, InnerStep
from fastvmt.strategies.presets import FASTVMT, GUIDED_FRACTION
from fastvmt.values import check_int, check_real

__all__ = ["EveryIteration", "Interval", "LossPlateau", "WarmupInterval", "computed_iterations", "guided_step_count"]


def guided_step_count(fraction: float, num_steps: int) -> int:
    """How many leading steps ``fraction`` guides: ``round(fraction * num_steps)``, at least 1 if fraction > 0."""
    if fraction <= 0:
        return 0
    return max(1, round(fraction * num_steps))


def computed_iterations(
    scheduler: GradientScheduler,
    outer_step: int,
    num_outer_steps: int,
    num_inner: int,
    loss: Callable[[int], float] = lambda inner: 1.0,
) -> list[int]:
    """The inner iterations of guided step ``outer_step`` at which ``scheduler`` computes a gradient.

    Drives the scheduler as the guidance loop does; ``loss(j)`` stands in for the loss of the gradient computed at
    iteration ``j`` (the default, the same loss every time, is a plateau).
    """
    losses: list[float] = []
    computed: list[int] = []
    reused = 0
    for inner in range(num_inner):
        if scheduler.should_compute(InnerStep(outer_step, num_outer_steps, inner, num_inner, tuple(losses), reused)):
            computed.append(inner)
            losses.append(loss(inner))
            reused = 0
        else:
            reused += 1
    return computed


class _FirstFraction(GradientScheduler):
    """Guides the first ``guided_fraction`` of the denoising steps (default: the presets' share)."""

    def __init__(self, guided_fraction: float = GUIDED_FRACTION):
        self.guided_fraction = check_real("guided_fraction", guided_fraction, low=0.0, high=1.0)

    def is_guided(self, step: int, num_steps: int) -> bool:
        return step < guided_step_count(self.guided_fraction, num_steps)


class EveryIteration(_FirstFraction):
    """Computes a fresh gradient at every inner iteration (DiTFlow)."""

    def should_compute(self, inner: InnerStep) -> bool:
        return True


class Interval(_FirstFraction):
    """Computes at iterations ``j % every == 0`` and reuses in between (default: the ``fastvmt`` preset's)."""

    def __init__(self, every: int = FASTVMT.scheduler.options["every"], guided_fraction: float = GUIDED_FRACTION):
        super().__init__(guided_fraction)
        self.every = check_int("every", every, low=1)

    def should_compute(self, inner: InnerStep) -> bool:
        return inner.inner % self.every == 0


class WarmupInterval(Interval):
    """Computes every iteration for the first ``warmup`` iterations, then every ``every``-th.

    Rationale: the first iterations of a guided step move the latent most (a fresh optimiser, the largest
    learning rate, the largest loss), so a cached gradient goes stale fastest there; later iterations make small
    refinements where reuse costs little. With ``warmup=2, every=4`` it computes 4 of 10 gradients, like
    ``interval(3)``, but spends them where they matter.
    """

    def __init__(self, warmup: int = 2, every: int = 4, guided_fraction: float = GUIDED_FRACTION):
        super().__init__(every, guided_fraction)
        self.warmup = check_int("warmup", warmup, low=1)

    def should_compute(self, inner: InnerStep) -> bool:
        return inner.inner < self.warmup or (inner.inner - self.warmup) % self.every == 0


class LossPlateau(_FirstFraction):
    """Reuses the cached gradient while the loss is on a plateau; recomputes while it moves.

    Rationale: a cached gradient stays a good direction while the loss landscape under the latent changes
    little. The first two iterations compute (two losses are needed to see movement); afterwards, if the last
    two computed losses differ by more than ``rtol`` (relative) the optimisation is moving fast and the next
    iteration recomputes, otherwise it reuses, for at most ``max_reuse`` iterations in a row.
    """

    def __init__(self, rtol: float = 0.02, max_reuse: int = 3, guided_fraction: float = GUIDED_FRACTION):
        super().__init__(guided_fraction)
        self.rtol = check_real("rtol", rtol, low=0.0)
        self.max_reuse = check_int("max_reuse", max_reuse, low=0)

    def should_compute(self, inner: InnerStep) -> bool:
        if len(inner.losses) < 2 or inner.reused >= self.max_reuse:
            return True
        previous, last = inner.losses[-2:]
        return abs(last - previous) > self.rtol * max(abs(previous), 1e-12)
