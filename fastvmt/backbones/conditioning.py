"""Wan2.1 image-to-video conditioning of the DiT on a first frame (docs/algorithm.md#image-to-video), as diffsynth's
Wan pipeline builds it (``WanVideoUnit_ImageEmbedderCLIP`` / ``ImageEmbedderVAE``, ``model_fn_wan_video``):

- ``clip``: the CLIP image encoder's features of the frame, ``(1, 257, 1280)``; the DiT embeds them (``img_emb``)
  and puts them before the text context, where each block's cross-attention reads them with its own keys;
- ``first_frame``: ``(1, 4 + C, F, H/8, W/8)``, a mask (1 on the given frame, 0 elsewhere; 4 channels, one per
  video frame of a latent frame) and the VAE latent of the frame followed by black frames, joined to the noisy
  latent as extra input channels.

One conditioning serves every DiT pass of a run: the denoising velocity and the guidance features alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor, nn

from fastvmt.backbones.architecture import FIRST_FRAME_MASK_CHANNELS
from fastvmt.geometry import SPATIAL_FACTOR, TEMPORAL_FACTOR

__all__ = ["ImageConditioning", "first_frame_mask", "first_frame_video"]


@dataclass(frozen=True)
class ImageConditioning:
    """What the DiT reads of the first frame: CLIP features and the masked first-frame latent (module docstring)."""

    clip: Float[Tensor, "1 257 1280"]
    first_frame: Float[Tensor, "1 c4 f h8 w8"]

    def attach(
        self, dit: nn.Module, latents: Float[Tensor, "1 c f h8 w8"], context: Float[Tensor, "b l d"]
    ) -> tuple[Float[Tensor, "1 c2 f h8 w8"], Float[Tensor, "b l2 d"]]:
        """The DiT input with the first-frame channels, and the embedded text ``context`` (already through
        ``dit.text_embedding``) with the embedded CLIP tokens before it (one copy per context of the batch)."""
        if self.first_frame.shape[2:] != latents.shape[2:]:
            raise ValueError(
                f"the image conditioning was made for a {tuple(self.first_frame.shape[2:])} latent, not "
                f"{tuple(latents.shape[2:])}: encode the image for this video's size and frame count"
            )
        first_frame = self.first_frame.to(device=latents.device, dtype=latents.dtype)
        clip = dit.img_emb(self.clip.to(device=context.device, dtype=context.dtype))
        return torch.cat([latents, first_frame], dim=1), torch.cat([clip.expand(len(context), -1, -1), context], dim=1)


def first_frame_mask(num_frames: int, h8: int, w8: int) -> Float[Tensor, "4 f h8 w8"]:
    """1 on the given first frame, 0 on the frames to generate: per latent frame, one channel per video frame it
    covers (the first latent frame covers frame 0 alone, so its 4 channels repeat it)."""
    frames = torch.zeros(num_frames, h8, w8)
    frames[0] = 1
    frames = torch.cat([frames[:1].expand(TEMPORAL_FACTOR - 1, -1, -1), frames])
    return frames.view(-1, FIRST_FRAME_MASK_CHANNELS, h8, w8).transpose(0, 1)


def first_frame_video(image: Float[Tensor, "3 h w"], num_frames: int) -> Float[Tensor, "t 3 h w"]:
    """The video the VAE encodes for the first-frame latent: ``image`` then black (0 in [-1, 1]) frames."""
    if image.ndim != 3 or image.shape[0] != 3 or image.shape[1] % SPATIAL_FACTOR or image.shape[2] % SPATIAL_FACTOR:
        raise ValueError(f"image must be (3, height, width) in [-1, 1] at the video's size, got {tuple(image.shape)}")
    return torch.cat([image[None], image.new_zeros(num_frames - 1, *image.shape)])
