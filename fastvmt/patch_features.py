"""Weight-free attention features: a video's own pixel patches standing in for a DiT's Q and K.

Frames ``0, 4, 8, ...`` (Wan's latent frames) are cut into 16x16 pixel patches (Wan's token size); each patch
is average-pooled to 4x4, flattened to 48 values, centred and L2-normalised. Q = K = these vectors, one head.
Their AMF is a block-matching flow of the video's content: a quick look at motion without model weights.
Centring and normalising make a descriptor blind to the patch's brightness and contrast. Unit vectors of 48
values give logits of at most ``tau / sqrt(48)``, so they need a high temperature (:data:`PATCH_TAU`) where
a DiT's Q and K use 1.

The weight-free backbone (:mod:`fastvmt.backbones.patch`) computes the same descriptors from its latents.
"""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F
from jaxtyping import Float, UInt8
from torch import Tensor

from fastvmt.interfaces import AttentionFeatures
from fastvmt.io.frames import frames_to_tensor

__all__ = ["PATCH", "PATCH_TAU", "POOLED", "patch_descriptors", "patch_features", "pool_patches"]

PATCH = 16
#: Pooled samples per token side: a token is described by ``POOLED x POOLED`` colours.
POOLED = 4
#: AMF temperature for patch features: logits up to ~144, close to hard block matching (lower ones blur the
#: flow towards each window's centre).
PATCH_TAU = 1000.0


def pool_patches(video: Float[Tensor, "f 3 h w"]) -> Float[Tensor, "f 3 h4 w4"]:
    """``video`` average-pooled to ``POOLED x POOLED`` samples per 16x16 token (``H/4 x W/4``)."""
    _, _, height, width = video.shape
    if height % PATCH or width % PATCH:
        raise ValueError(f"frame size {height}x{width} must be a multiple of {PATCH}; resize or crop the video")
    return F.avg_pool2d(video, PATCH // POOLED)


def patch_descriptors(pooled: Float[Tensor, "f 3 h4 w4"]) -> Float[Tensor, "f h w 48"]:
    """The centred, L2-normalised ``3 * POOLED**2`` values of each token of a :func:`pool_patches` video."""
    patches = pooled.unfold(2, POOLED, POOLED).unfold(3, POOLED, POOLED)  # (F, 3, H/16, W/16, 4, 4)
    tokens = patches.permute(0, 2, 3, 1, 4, 5).flatten(3)  # (F, H/16, W/16, 48)
    return F.normalize(tokens - tokens.mean(dim=-1, keepdim=True), dim=-1)


def patch_features(frames: UInt8[np.ndarray, "t h w 3"], *, temporal_stride: int = 4) -> AttentionFeatures:
    """Features of ``frames`` (T, H, W, 3) uint8 on a ``(T-1)//stride + 1`` x ``H/16`` x ``W/16`` token grid."""
    video = frames_to_tensor(np.ascontiguousarray(frames[::temporal_stride]))
    tokens = patch_descriptors(pool_patches(video))
    return AttentionFeatures(q=tokens[..., None, :], k=tokens[..., None, :])
