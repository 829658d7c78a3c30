"""Weight-free attention features: a video's own pixel patches standing in for a DiT's Q and K.

Frames ``0, 4, 8, ...`` (Wan's latent frames) are cut into 16x16 pixel patches (Wan's token size); each patch
is average-pooled to 4x4, flattened to 48 values, centred and L2-normalised. Q = K = these vectors, one head.
Their AMF is a block-matching flow of the video's content: a quick look at motion without model weights.
Unit vectors of 48 values give logits of at most ``tau / sqrt(48)``, so they need a high temperature
(:data:`PATCH_TAU`) where a DiT's Q and K use 1.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import UInt8

from fastvmt.interfaces import AttentionFeatures

__all__ = ["PATCH", "PATCH_TAU", "patch_features"]

PATCH = 16
#: AMF temperature for patch features: logits up to ~144, close to hard block matching (lower ones blur the
#: flow towards each window's centre).
PATCH_TAU = 1000.0
_POOLED = 4


def patch_features(frames: UInt8[np.ndarray, "t h w 3"], *, temporal_stride: int = 4) -> AttentionFeatures:
    """Features of ``frames`` (T, H, W, 3) uint8 on a ``(T-1)//stride + 1`` x ``H/16`` x ``W/16`` token grid."""
    t, h, w, _ = frames.shape
    if h % PATCH or w % PATCH:
        raise ValueError(f"frame size {h}x{w} must be a multiple of {PATCH}; resize or crop the video")
    video = torch.from_numpy(np.ascontiguousarray(frames[::temporal_stride])).permute(0, 3, 1, 2).float() / 255
    pooled = F.avg_pool2d(video, PATCH // _POOLED)  # (F, 3, H/4, W/4)
    patches = pooled.unfold(2, _POOLED, _POOLED).unfold(3, _POOLED, _POOLED)  # (F, 3, H/16, W/16, 4, 4)
    tokens = patches.permute(0, 2, 3, 1, 4, 5).flatten(3)  # (F, H/16, W/16, 48)
    tokens = F.normalize(tokens - tokens.mean(dim=-1, keepdim=True), dim=-1)
    return AttentionFeatures(q=tokens[..., None, :], k=tokens[..., None, :])
