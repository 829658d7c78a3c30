"""Wan's flow-matching sampler: the sigma schedule, the start point and the Euler step.

Follows diffsynth's ``FlowMatchScheduler`` Wan template: ``num_steps`` sigmas from ``denoising_strength`` down
to 0 (exclusive), shifted by ``shift * s / (1 + (shift - 1) * s)``; timestep = sigma * 1000.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = ["FlowMatchSchedule", "add_noise"]

NUM_TRAIN_TIMESTEPS = 1000


@dataclass(frozen=True)
class FlowMatchSchedule:
    """Sigmas (``num_steps``, decreasing, the last step goes to 0) and the matching timesteps."""

    sigmas: tuple[float, ...]

    @classmethod
    def wan(cls, num_steps: int, *, shift: float, denoising_strength: float = 1.0) -> FlowMatchSchedule:
        if num_steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_steps}")
        if not 0.0 < denoising_strength <= 1.0:
            raise ValueError(f"denoising_strength must be in (0, 1], got {denoising_strength}")
        if shift <= 0:
            raise ValueError(f"shift must be > 0, got {shift}")
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
