"""A weight-free backbone whose attention features are block-matching descriptors of its own latent.

What it is for: teaching, diagnostics and tests. Its AMF is a block-matching flow of the latent video's content
(:mod:`fastvmt.patch_features`), so every part of a guided run (extraction, losses, schedulers, gradients, the
report) runs in milliseconds without weights, on numbers one can check by hand. What it is not: a generator.
It ignores prompts and its velocity is zero: sampling leaves the latents as they start and only guidance
changes them (start it from a clean latent, the pipeline's ``latents=``; noise added to the start is never
removed). Without a generative prior, guidance on it pulls the AMF at the guidance temperature towards the
reference's by changing the texture, not by moving content: the output's near-hard block-matching flow and
its point tracks do not follow the reference (``tests/test_motion_transfer.py`` measures both).

The "VAE" is pixel pooling. ``encode_video`` keeps frames ``0, 4, 8, ...`` (Wan's latent frames), pools each
16x16 token to 4x4 colours (:func:`~fastvmt.patch_features.pool_patches`) and folds every 2x2 block of those
into 12 channels, giving Wan's latent layout ``(1, 12, F, H/8, W/8)`` and token grid ``F x H/16 x W/16``.
``decode`` unfolds the channels, repeats each pooled colour over its 4x4 pixels and fills the three frames
between two latent frames by linear interpolation (a cross-fade), so ``encode_video(decode(z)) == z``.
Q = K = the token's 48 pooled colours, centred and L2-normalised (one head): the features of an encoded video
are :func:`~fastvmt.patch_features.patch_features` of the video. Like those, their AMF needs a high
temperature (:data:`~fastvmt.patch_features.PATCH_TAU` for near-hard matching, lower ones for guidance).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from fastvmt.geometry import SPATIAL_FACTOR, TEMPORAL_FACTOR, video_geometry
from fastvmt.interfaces import AttentionFeatures, Backbone, VideoGeometry
from fastvmt.patch_features import PATCH, POOLED, patch_descriptors, pool_patches

__all__ = ["LATENT_CHANNELS", "PatchBackbone"]

#: Pooled samples per latent pixel side (4x4 per 16 px token, 2x2 latent pixels per token).
_FOLD = POOLED * SPATIAL_FACTOR // PATCH
#: Latent channels: 3 colours x a 2x2 block of pooled samples.
LATENT_CHANNELS = 3 * _FOLD**2


def _unfold(latents: Float[Tensor, "1 12 f h8 w8"]) -> Float[Tensor, "f 3 h4 w4"]:
    """The pooled colours of ``latents``, the inverse of ``encode_video``'s channel fold."""
    return F.pixel_shuffle(latents[0].transpose(0, 1), _FOLD)


class PatchBackbone(Backbone):
    """The weight-free patch backbone (see the module docstring), on the CPU in float32.

    It has no layers: ``features(..., block=b)`` is the same for every ``b``. ``num_blocks`` is Wan2.1-1.3B's
    30, so strategies name the blocks they would use on it. ``feature_calls`` and ``velocity_calls`` count
    the calls the pipeline made.
    """

    num_blocks = 30
    heads = 1
    head_dim = 3 * POOLED**2

    def __init__(self) -> None:
        self.feature_calls = 0
        self.velocity_calls = 0

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def geometry(self, num_frames: int, height: int, width: int) -> VideoGeometry:
        return video_geometry(num_frames, height, width, latent_channels=LATENT_CHANNELS)

    def encode_video(self, video: Float[Tensor, "t 3 h w"]) -> Float[Tensor, "1 12 f h8 w8"]:
        pooled = pool_patches(video[::TEMPORAL_FACTOR].float())  # (F, 3, H/4, W/4)
        return F.pixel_unshuffle(pooled, _FOLD).transpose(0, 1)[None]

    def decode(self, latents: Float[Tensor, "1 12 f h8 w8"]) -> Float[Tensor, "t 3 h w"]:
        pooled = _unfold(latents)
        frames = F.interpolate(pooled, scale_factor=PATCH // POOLED, mode="nearest")
        # (3, F, H, W) -> (3, T, H, W): linear in time, latent frame i at video frame 4i.
        video = F.interpolate(frames.transpose(0, 1)[None], size=(TEMPORAL_FACTOR * (len(frames) - 1) + 1,
                              *frames.shape[-2:]), mode="trilinear", align_corners=True)[0]
        return video.transpose(0, 1).clamp(-1, 1)

    def encode_prompt(self, prompt: str) -> Tensor:
        """Prompts are ignored: an empty context."""
        return torch.empty(0)

    def velocity(
        self,
        latents: Float[Tensor, "1 12 f h8 w8"],
        timestep: float,
        context: Tensor,
        negative_context: Tensor | None = None,
        cfg_scale: float = 1.0,
        cache: Any = None,
    ) -> Float[Tensor, "1 12 f h8 w8"]:
        """Zero: sampling does not change the latents. No step cache (``cache`` must be None)."""
        if cache is not None:
            self.step_cache(0.0, 0)  # raises: this backbone has none
        self.velocity_calls += 1
        return torch.zeros_like(latents)

    def features(
        self,
        latents: Float[Tensor, "1 12 f h8 w8"],
        timestep: float,
        context: Tensor,
        *,
        block: int,
        checkpointing: bool = False,
    ) -> AttentionFeatures:
        """Q = K = :func:`~fastvmt.patch_features.patch_descriptors` of the latent, ``(F, H, W, 1, 48)``
        (no blocks, so ``checkpointing`` has nothing to recompute)."""
        if not 0 <= block < self.num_blocks:
            raise ValueError(f"block must be in 0..{self.num_blocks - 1}, got {block}")
        self.feature_calls += 1
        tokens = patch_descriptors(_unfold(latents))
        return AttentionFeatures(q=tokens[..., None, :], k=tokens[..., None, :])
