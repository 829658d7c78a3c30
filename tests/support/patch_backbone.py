"""A weight-free backbone whose attention features are the latent's own patches.

Latents are the video's frames 0, 4, 8, ... average-pooled 8x8 (3 channels); Q = K = the L2-normalised 2x2
latent patches (one head of 12 channels); the velocity is zero, so only guidance changes the latents. With it,
the AMF of a latent video is a block-matching flow of its content, which lets tests check that guidance
really transfers motion.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fastvmt.interfaces import AttentionFeatures, Backbone, TokenGrid, VideoGeometry


class PatchBackbone(Backbone):
    num_blocks = 16
    heads = 1
    head_dim = 12

    def __init__(self):
        self.feature_calls = 0
        self.velocity_calls = 0

    @property
    def device(self):
        return torch.device("cpu")

    @property
    def dtype(self):
        return torch.float32

    def geometry(self, num_frames, height, width):
        if (num_frames - 1) % 4:
            raise ValueError(f"frame count {num_frames} is not 4k+1")
        if height % 16 or width % 16:
            raise ValueError(f"{height}x{width} is not a multiple of 16")
        frames = (num_frames - 1) // 4 + 1
        return VideoGeometry(
            num_frames, height, width, (1, 3, frames, height // 8, width // 8), TokenGrid(frames, height // 16, width // 16)
        )

    def encode_video(self, video):
        pooled = F.avg_pool2d(video[::4], 8)  # (F, 3, H8, W8)
        return pooled.permute(1, 0, 2, 3)[None]

    def decode(self, latents):
        frames = latents[0].permute(1, 0, 2, 3)  # (F, 3, H8, W8)
        upsampled = F.interpolate(frames, scale_factor=8, mode="nearest")
        index = torch.arange(4 * (frames.shape[0] - 1) + 1).div(4, rounding_mode="floor")
        return upsampled[index].clamp(-1, 1)

    def encode_prompt(self, prompt):
        return torch.tensor([float(len(prompt))])

    def velocity(self, latents, timestep, context, negative_context=None, cfg_scale=1.0):
        self.velocity_calls += 1
        return torch.zeros_like(latents)

    def features(self, latents, timestep, context, *, block):
        self.feature_calls += 1
        patches = latents[0].unfold(2, 2, 2).unfold(3, 2, 2)  # (3, F, H, W, 2, 2)
        tokens = patches.permute(1, 2, 3, 0, 4, 5).flatten(3)  # (F, H, W, 12)
        tokens = F.normalize(tokens - tokens.mean(dim=-1, keepdim=True), dim=-1)
        return AttentionFeatures(q=tokens[..., None, :], k=tokens[..., None, :])
