"""Wan's flow-matching sampler: the sigma schedule, the start point and the Euler step.

Follows diffsynth's ``FlowMatchScheduler`` Wan template: ``num_steps`` sigmas from ``denoising_strength`` down
to 0 (exclusive), shifted by ``shift * s / (1 + (shift - 1) * s)``; timestep = sigma * 1000.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from fastvmt.strategies.spec import check_field
from fastvmt.values import check_int

__all__ = ["MAX_SEED", "MAX_STEPS", "FlowMatchSchedule", "add_noise", "check_num_steps", "check_seed"]

NUM_TRAIN_TIMESTEPS = 1000
#: The most denoising steps: one per training timestep (a finer schedule repeats timesteps the model was trained
#: on; its sigmas are allocated up front).
MAX_STEPS = NUM_TRAIN_TIMESTEPS
#: Seeds are what ``torch.Generator.manual_seed`` takes without wrapping around: ``0 .. 2**64 - 1``.
MAX_SEED = 2**64 - 1


def check_num_steps(num_steps: object) -> int:
    """``num_steps`` if it is an integer in ``[1, MAX_STEPS]``; ``ValueError`` naming the bound otherwise."""
    try:
        return check_int("the number of denoising steps", num_steps, low=1, high=MAX_STEPS)
    except ValueError as exc:
        raise ValueError(f"{exc} (at most one step per training timestep, {MAX_STEPS})") from None


def check_seed(seed: object) -> int:
    """``seed`` if it is an integer in ``[0, MAX_SEED]``; ``ValueError`` otherwise."""
    return check_int("seed", seed, low=0, high=MAX_SEED)


@dataclass(frozen=True)
class FlowMatchSchedule:
    """Sigmas (``num_steps``, decreasing, the last step goes to 0) and the matching timesteps."""

    sigmas: tuple[float, ...]

    @classmethod
    def wan(cls, num_steps: int, *, shift: float, denoising_strength: float = 1.0) -> FlowMatchSchedule:
        check_num_steps(num_steps)
        denoising_strength = check_field("denoising_strength", denoising_strength)
        shift = check_field("shift", shift)
        raw = torch.linspace(denoising_strength, 0.0, num_steps + 1, dtype=torch.float64)[:-1]
        shifted = shift * raw / (1 + (shift - 1) * raw)
        return cls(tuple(shifted.tolist()))

    def __len__(self) -> int:
        return len(self.sigmas)

    def timestep(self, step: int) -> float:
        return self.sigmas[step] * NUM_TRAIN_TIMESTEPS

    def next_sigma(self, step: int) -> float:
        return self.sigmas[step + 1] if step + 1 < len(self.sigmas) else 0.0

    def step(self, latents: Tensor, velocity: Tensor, step: int) -> Tensor:
        """Euler step of the flow ODE from ``sigmas[step]`` to the next sigma."""
        return latents + velocity * (self.next_sigma(step) - self.sigmas[step])


def add_noise(clean: Float[Tensor, "..."], noise: Float[Tensor, "..."], sigma: float) -> Float[Tensor, "..."]:
    """The flow-matching forward process: ``(1 - sigma) * clean + sigma * noise``."""
    return (1 - sigma) * clean + sigma * noise
