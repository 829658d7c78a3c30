"""Wan's flow-matching sampler: the sigma schedule, the start point and the Euler step.

Follows diffsynth's ``FlowMatchScheduler`` Wan template: ``num_steps`` sigmas from ``denoising_strength`` down
to 0 (exclusive), shifted by ``shift * s / (1 + (shift - 1) * s)``; timestep = sigma * 1000. With
``strength_semantics="truncate"`` the schedule is instead the tail of the full (strength 1) schedule whose unshifted
sigmas are at most the strength (:func:`steps_run`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from fastvmt.strategies.spec import check_field
from fastvmt.values import check_int

__all__ = ["MAX_SEED", "MAX_STEPS", "FlowMatchSchedule", "add_noise", "check_num_steps", "check_seed", "steps_run"]

NUM_TRAIN_TIMESTEPS = 1000
#: The most denoising steps: one per training timestep (a finer schedule repeats timesteps the model was trained
#: on; its sigmas are allocated up front).
MAX_STEPS = NUM_TRAIN_TIMESTEPS
#: Seeds are what ``torch.Generator.manual_seed`` takes without wrapping around: ``0 .. 2**64 - 1``.
MAX_SEED = 2**64 - 1
#: Slack of ``num_steps * strength`` when counting truncated steps, so that 0.29 * 100 (28.999999999999996 in
#: floating point) counts 29.
_STEP_COUNT_TOLERANCE = 1e-9


def check_num_steps(num_steps: object) -> int:
    """``num_steps`` if it is an integer in ``[1, MAX_STEPS]``; ``ValueError`` naming the bound otherwise."""
    try:
        return check_int("the number of denoising steps", num_steps, low=1, high=MAX_STEPS)
    except ValueError as exc:
        raise ValueError(f"{exc} (at most one step per training timestep, {MAX_STEPS})") from None


def check_seed(seed: object) -> int:
    """``seed`` if it is an integer in ``[0, MAX_SEED]``; ``ValueError`` otherwise."""
    return check_int("seed", seed, low=0, high=MAX_SEED)


def steps_run(num_steps: int, strength: float, semantics: str) -> int:
    """Denoising steps a run of ``num_steps`` executes at ``strength``: all of them (``"diffsynth"``), or those of
    the full schedule whose unshifted sigma ``1 - k / num_steps`` is at most ``strength`` (``"truncate"``:
    ``floor(num_steps * strength)``, diffusers' image-to-image count); ``ValueError`` when that is none."""
    check_num_steps(num_steps)
    strength = check_field("denoising_strength", strength)
    if check_field("strength_semantics", semantics) == "diffsynth":
        return num_steps
    steps = math.floor(num_steps * strength + _STEP_COUNT_TOLERANCE)
    if steps == 0:
        raise ValueError(f"denoising_strength={strength} truncates {num_steps} steps to none; use at least "
                         f"{math.ceil(1 / strength)} steps or strength_semantics='diffsynth'")
    return steps


@dataclass(frozen=True)
class FlowMatchSchedule:
    """Sigmas (``num_steps``, decreasing, the last step goes to 0) and the matching timesteps."""

    sigmas: tuple[float, ...]

    @classmethod
    def wan(cls, num_steps: int, *, shift: float, denoising_strength: float = 1.0,
            strength_semantics: str = "diffsynth") -> FlowMatchSchedule:
        """Wan's schedule of ``num_steps`` at ``denoising_strength``; ``"truncate"`` keeps the last
        :func:`steps_run` sigmas of the full schedule."""
        steps = steps_run(num_steps, denoising_strength, strength_semantics)
        shift = check_field("shift", shift)
        start = denoising_strength if strength_semantics == "diffsynth" else 1.0
        raw = torch.linspace(start, 0.0, num_steps + 1, dtype=torch.float64)[num_steps - steps:-1]
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
