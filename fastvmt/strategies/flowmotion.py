"""FlowMotion's maths on latent videos (docs/algorithm.md#flowmotion): the predicted clean latent with its velocity
regularised towards the sampling path, and the frame-difference error.

Latents are ``(1, C, F, H8, W8)``; everything is computed in float32.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

from fastvmt.interfaces import LatentPrediction

__all__ = ["frame_difference_mse", "predicted_clean", "regularise_velocity"]

#: Keeps the projection finite where the path velocity is zero.
PROJECTION_EPS = 1e-8


def regularise_velocity(
    velocity: Float[Tensor, "1 c f h w"], path_velocity: Float[Tensor, "1 c f h w"], gamma: float
) -> Float[Tensor, "1 c f h w"]:
    """``v_par + gamma * v_perp``: per latent position, the velocity's component along the path velocity kept and
    the rest scaled by ``gamma`` (products over the channel axis)."""
    scale = (velocity * path_velocity).sum(1, keepdim=True) / (
        path_velocity.square().sum(1, keepdim=True) + PROJECTION_EPS
    )
    parallel = scale * path_velocity
    return parallel + gamma * (velocity - parallel)


def predicted_clean(prediction: LatentPrediction, gamma: float) -> Float[Tensor, "1 c f h w"]:
    """``latents - sigma * v``, float32, with ``v`` regularised by ``gamma`` where the path velocity is known; the
    latents themselves at ``sigma = 0``. The gradient reaches the latents only (the velocity has no graph)."""
    latents = prediction.latents.float()
    if prediction.velocity is None:
        return latents
    velocity = prediction.velocity.detach().float()
    if prediction.path_velocity is not None:
        velocity = regularise_velocity(velocity, prediction.path_velocity.float(), gamma)
    return latents - prediction.sigma * velocity


def _mean_square(a: Tensor, b: Tensor) -> Tensor:
    return (a - b).square().mean()


def frame_difference_mse(reference: Float[Tensor, "1 c f h w"], generated: Float[Tensor, "1 c f h w"]) -> Tensor:
    """Mean squared error between the frame differences ``D`` of two latent videos of ``F >= 2`` frames.

    ``D`` stacks ``|x_(k+1) - x_k|`` for the ``F - 1`` consecutive pairs and ``|x_i - x_j|`` for every ordered pair
    ``i != j``; its mean squared error equals ``(mse_consecutive + F * mse_pairs) / (F + 1)`` with ``mse_pairs``
    over the unordered pairs ``i < j``, which is how it is computed (half the memory of the ordered pairs).
    """
    frames = generated.shape[2]
    if frames < 2 or reference.shape != generated.shape:
        raise ValueError(f"frame differences need two latent videos of one shape with >= 2 frames, got "
                         f"{tuple(reference.shape)} and {tuple(generated.shape)}")
    ref, gen = reference.float()[0], generated.float()[0]  # (C, F, H, W)
    consecutive = _mean_square((ref[:, 1:] - ref[:, :-1]).abs(), (gen[:, 1:] - gen[:, :-1]).abs())
    first, second = torch.triu_indices(frames, frames, 1, device=gen.device)
    pairs = _mean_square((ref[:, first] - ref[:, second]).abs(), (gen[:, first] - gen[:, second]).abs())
    return (consecutive + frames * pairs) / (frames + 1)
