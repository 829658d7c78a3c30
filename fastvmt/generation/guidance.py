"""One guided denoising step's optimisation (docs/algorithm.md#guided-sampling).

A fresh optimiser works on a float32 master copy of the latent (a bf16 leaf would round most AdamW updates
away). Each inner iteration either reads the backbone afresh at the latent (what the extractor consumes:
attention features with their graph, or the velocity without one) and computes the loss gradient, or reuses what
it read last, as the gradient scheduler decides. Reusing attention features reuses their gradient (another needs
the DiT); reusing a velocity re-evaluates the loss and its gradient at the moved latent (no DiT involved).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from fastvmt.generation.finite import check_finite
from fastvmt.generation.readings import BackboneReader
from fastvmt.generation.report import RunCounts
from fastvmt.interfaces import ATTENTION, PREDICTION, InnerStep, Motion, Readings
from fastvmt.strategies.components import Components
from fastvmt.strategies.spec import Strategy

__all__ = ["GuidanceStep", "apply_gradient", "guide_latents", "learning_rate", "no_gradient_to_reuse",
           "optimizer_for"]


def learning_rate(strategy: Strategy, inner: int, guided_index: int, num_guided: int) -> float:
    """The learning rate of inner iteration ``inner`` of the ``guided_index``-th guided step."""
    start, end = strategy.learning_rate
    if strategy.lr_schedule == "inner":
        return start + (end - start) * inner / strategy.inner_iterations
    return start + (end - start) * guided_index / max(num_guided - 1, 1)


@dataclass(frozen=True)
class GuidanceStep:
    """Where in the run a guided step is (timestep and noise level ``sigma``), what it optimises towards, and where
    sampling started (``start`` latents at ``start_sigma``), for the path velocity."""

    outer_step: int
    num_outer_steps: int
    guided_index: int
    num_guided: int
    timestep: float
    sigma: float
    reference: Motion
    extractor_state: Any
    start: Tensor
    start_sigma: float

    def path_velocity(self, latents: Tensor) -> Tensor | None:
        """The mean velocity ``(latents - start) / (sigma - start_sigma)`` from the start, float32; ``None`` at it."""
        if self.sigma == self.start_sigma:
            return None
        return (latents.float() - self.start.float()) / (self.sigma - self.start_sigma)


def optimizer_for(strategy: Strategy, master: Tensor) -> torch.optim.Optimizer:
    """The strategy's optimiser, fresh, on the float32 leaf ``master``."""
    if strategy.optimizer == "adamw":
        return torch.optim.AdamW([master], lr=strategy.learning_rate[0], weight_decay=strategy.weight_decay)
    return torch.optim.Adam([master], lr=strategy.learning_rate[0], weight_decay=strategy.weight_decay)


def apply_gradient(optimizer: torch.optim.Optimizer, master: Tensor, gradient: Tensor, strategy: Strategy,
                   step: GuidanceStep, inner: int, counts: RunCounts) -> None:
    """Inner iteration ``inner``'s update of the optimised leaf ``master`` with ``gradient`` (fresh or reused), at the
    strategy's learning rate for it; counts the iteration."""
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(strategy, inner, step.guided_index, step.num_guided)
    master.grad = gradient.clone()
    optimizer.step()
    counts.inner_iterations += 1


def no_gradient_to_reuse(components: Components, inner: int) -> RuntimeError:
    """The error of a gradient scheduler that asks to reuse a gradient at iteration ``inner`` before one exists."""
    return RuntimeError(f"gradient scheduler {type(components.scheduler).__name__} asked to reuse a gradient at "
                        f"iteration {inner} before computing one")


def guide_latents(
    latents: Tensor,
    step: GuidanceStep,
    *,
    reader: BackboneReader,
    components: Components,
    strategy: Strategy,
    context: Tensor,
    negative: Tensor | None,
    cfg_scale: float,
) -> tuple[Tensor, list[dict[str, float]]]:
    """Optimise ``latents`` towards the reference motion; returns the new latents (input dtype) and the loss
    parts of every gradient computed from a fresh reading. Velocities are the CFG ones of the denoising
    (``context``, ``negative``, ``cfg_scale``)."""
    extractor, reads, counts = components.extractor, components.extractor.reads, reader.counts
    master = latents.detach().float().clone().requires_grad_(True)
    optimizer = optimizer_for(strategy, master)
    path_velocity = step.path_velocity(latents) if PREDICTION in reads else None
    readings: Readings | None = None
    gradient: Tensor | None = None
    losses: list[dict[str, float]] = []
    reused = 0
    for inner in range(strategy.inner_iterations):
        position = InnerStep(
            step.outer_step,
            step.num_outer_steps,
            inner,
            strategy.inner_iterations,
            tuple(parts["total"] for parts in losses),
            reused,
        )
        fresh = components.scheduler.should_compute(position)
        if fresh:
            # The prediction holds ``master`` itself: after an optimiser step it is the moved latent.
            readings = reader.read(reads, master, sigma=step.sigma, timestep=step.timestep, context=context,
                                   negative=negative, cfg_scale=cfg_scale, path_velocity=path_velocity)
        elif readings is None:
            raise no_gradient_to_reuse(components, inner)
        if fresh or ATTENTION not in reads:
            loss = components.loss(step.reference, extractor.extract(readings.input_for(reads), step.extractor_state))
            (gradient,) = torch.autograd.grad(loss.total, master)
            check_finite(gradient, f"the guidance gradient of iteration {inner}", step=step.outer_step,
                         num_steps=step.num_outer_steps)
        if fresh:
            losses.append({"total": loss.total.item(), **loss.parts})
            counts.gradients_computed += 1
            counts.blocks_backward += strategy.block + 1 if ATTENTION in reads else 0
            reused = 0
        else:
            counts.gradients_reused += 1
            reused += 1
        apply_gradient(optimizer, master, gradient, strategy, step, inner, counts)
    return master.detach().to(latents.dtype), losses
