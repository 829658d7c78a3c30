"""One guided denoising step's optimisation (docs/algorithm.md#guided-sampling).

A fresh optimiser works on a float32 master copy of the latent (a bf16 leaf would round most AdamW updates
away); each inner iteration either computes the loss gradient through the backbone's early-exit forward or
reuses the cached one, as the gradient scheduler decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from fastvmt.interfaces import Backbone, InnerStep, MotionField
from fastvmt.generation.finite import check_finite
from fastvmt.generation.report import RunCounts
from fastvmt.strategies.components import Components
from fastvmt.strategies.spec import Strategy

__all__ = ["GuidanceStep", "guide_latents", "learning_rate"]


def learning_rate(strategy: Strategy, inner: int, guided_index: int, num_guided: int) -> float:
    """The learning rate of inner iteration ``inner`` of the ``guided_index``-th guided step."""
    start, end = strategy.learning_rate
    if strategy.lr_schedule == "inner":
        return start + (end - start) * inner / strategy.inner_iterations
    return start + (end - start) * guided_index / max(num_guided - 1, 1)


@dataclass(frozen=True)
class GuidanceStep:
    """Where in the run a guided step is, and what it optimises towards."""

    outer_step: int
    num_outer_steps: int
    guided_index: int
    num_guided: int
    timestep: float
    reference: MotionField
    extractor_state: Any


def _optimizer(strategy: Strategy, master: Tensor) -> torch.optim.Optimizer:
    if strategy.optimizer == "adamw":
        return torch.optim.AdamW([master], lr=strategy.learning_rate[0], weight_decay=strategy.weight_decay)
    return torch.optim.Adam([master], lr=strategy.learning_rate[0], weight_decay=strategy.weight_decay)


def guide_latents(
    latents: Tensor,
    step: GuidanceStep,
    *,
    backbone: Backbone,
    components: Components,
    strategy: Strategy,
    context: Tensor,
    counts: RunCounts,
) -> tuple[Tensor, list[dict[str, float]]]:
    """Optimise ``latents`` towards the reference motion; returns the new latents (input dtype) and the loss
    parts of every computed gradient."""
    master = latents.detach().float().clone().requires_grad_(True)
    optimizer = _optimizer(strategy, master)
    cached: Tensor | None = None
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
        if components.scheduler.should_compute(position):
            features = backbone.features(master.to(latents.dtype), step.timestep, context, block=strategy.block)
            generated = components.extractor.extract(features, step.extractor_state)
            loss = components.loss(step.reference, generated)
            (cached,) = torch.autograd.grad(loss.total, master)
            check_finite(cached, f"the guidance gradient of iteration {inner}", step=step.outer_step,
                         num_steps=step.num_outer_steps)
            losses.append({"total": loss.total.item(), **loss.parts})
            counts.gradients_computed += 1
            counts.blocks_forward += strategy.block + 1
            counts.blocks_backward += strategy.block + 1
            reused = 0
        elif cached is None:
            raise RuntimeError(
                f"gradient scheduler {type(components.scheduler).__name__} asked to reuse a gradient at iteration "
                f"{inner} before computing one"
            )
        else:
            counts.gradients_reused += 1
            reused += 1
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(strategy, inner, step.guided_index, step.num_guided)
        master.grad = cached.clone()
        optimizer.step()
        counts.inner_iterations += 1
    return master.detach().to(latents.dtype), losses
