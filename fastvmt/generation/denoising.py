"""What a guided run and a run from a motion file share: the step cache after the last guided step, one
denoising step, and the decode (docs/algorithm.md#guided-sampling)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from fastvmt.generation.finite import check_finite
from fastvmt.generation.readings import velocity_passes
from fastvmt.generation.report import PhaseTimer
from fastvmt.generation.sampling import FlowMatchSchedule
from fastvmt.interfaces import Backbone
from fastvmt.io.frames import tensor_to_frames

__all__ = ["decode_frames", "denoise_step", "step_cache"]


def step_cache(backbone: Backbone, threshold: float | None, unguided_steps: int) -> Any:
    """A fresh step cache (docs/algorithm.md#step-cache) for the ``unguided_steps`` after the last guided one, or
    None when the strategy has none or no step is left unguided."""
    if threshold is None or unguided_steps == 0:
        return None
    return backbone.step_cache(threshold, unguided_steps)


def denoise_step(backbone: Backbone, schedule: FlowMatchSchedule, x: Tensor, k: int, context: Tensor,
                 negative: Tensor | None, cfg_scale: float, cache: Any = None) -> tuple[Tensor, int]:
    """Step ``k`` of ``schedule`` from the latents ``x`` ``(1, C, F, H/8, W/8)`` with the CFG velocity (through
    ``cache`` when given: never on a guided step); returns the new latents and the DiT passes computed."""
    timestep = schedule.timestep(k)
    if cache is None:
        velocity, passes = backbone.velocity(x, timestep, context, negative, cfg_scale), velocity_passes(cfg_scale)
    else:
        computed = cache.passes_computed
        velocity = backbone.velocity(x, timestep, context, negative, cfg_scale, cache=cache)
        passes = cache.passes_computed - computed
    check_finite(velocity, "the velocity (with classifier-free guidance)", step=k, num_steps=len(schedule))
    x = schedule.step(x, velocity, k)
    check_finite(x, "the latents after the denoising step", step=k, num_steps=len(schedule))
    return x, passes


def decode_frames(backbone: Backbone, x: Tensor, timer: PhaseTimer) -> np.ndarray:
    """The video of the final latents, ``(T, H, W, 3)`` uint8, timed as the ``decode`` phase."""
    with timer.phase("decode"), torch.no_grad():
        decoded = backbone.decode(x)
        check_finite(decoded, "the decoded video")
        return tensor_to_frames(decoded)
