"""The run's check for NaN and infinity: a sampled video is only kept if every number on its way was finite.

The pipeline checks the reference latents, and at every denoising step the latents after guidance, the velocity,
the latents after the Euler step and after callbacks, then the decoded video; the guidance checks each gradient.
The first non-finite value stops the run with a :class:`NonFiniteError` naming what held it and the step.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["NonFiniteError", "check_finite"]

#: What tends to cause a non-finite run, said with the error.
_HINT = "a smaller cfg scale or learning rate, or dtype bfloat16 or float32 instead of float16, may avoid it"


class NonFiniteError(FloatingPointError):
    """A run produced NaN or infinity: the message names the tensor and the denoising step where it appeared."""


def check_finite(tensor: Tensor, what: str, *, step: int | None = None, num_steps: int | None = None) -> None:
    """``NonFiniteError`` if ``tensor`` holds NaN or infinity (``step`` of ``num_steps``: where in the run)."""
    finite = torch.isfinite(tensor.detach())
    if bool(finite.all()):
        return
    bad = finite.numel() - int(finite.sum())
    where = "" if step is None else f" at denoising step {step}" + ("" if num_steps is None else
                                                                     f" (of 0..{num_steps - 1})")
    raise NonFiniteError(f"{what}: {bad:,} of {finite.numel():,} values are NaN or infinite{where}; the run was "
                         f"stopped ({_HINT})")
