"""Wan2.1 image-to-video conditioning of the DiT on a first frame (docs/algorithm.md#image-to-video), as diffsynth's
Wan pipeline builds it (``WanVideoUnit_ImageEmbedderCLIP`` / ``ImageEmbedderVAE``, ``model_fn_wan_video``):

- ``clip``: the CLIP image encoder's features of the frame, ``(1, 257, 1280)``; the DiT embeds them (``img_emb``)
  and puts them before the text context, where each block's cross-attention reads them with its own keys;
- ``first_frame``: ``(1, 4 + C, F, H/8, W/8)``, a mask (1 on the given frame, 0 elsewhere; 4 channels, one per
  video frame of a latent frame) and the VAE latent of the frame followed by black frames, joined to the noisy
  latent as extra input channels.

Wan2.2 TI2V-5B conditions on a first frame differently (:class:`FusedFirstFrame`, docs/algorithm.md#ti2v): the
frame's latent replaces the first latent frame, whose tokens the DiT sees at timestep 0 (clean).

One conditioning serves every DiT pass of a run: the denoising velocity and the guidance features alike.
:class:`FirstFrameConditioned` is what a backbone conditioned this way adds to :class:`~.wan.WanBackbone`.
"""

from __future__ import annotations

from dataclasses import dataclass

import contextlib
from collections.abc import Iterator, Sequence
from typing import Union

import torch
from jaxtyping import Float
from torch import Tensor, nn

from fastvmt.backbones.architecture import FIRST_FRAME_MASK_CHANNELS
from fastvmt.geometry import SPATIAL_FACTOR, TEMPORAL_FACTOR

__all__ = [
    "Conditioning",
    "FirstFrameConditioned",
    "FusedFirstFrame",
    "ImageConditioning",
    "first_frame_mask",
    "first_frame_video",
]


@dataclass(frozen=True)
class ImageConditioning:
    """What the DiT reads of the first frame: CLIP features and the masked first-frame latent (module docstring)."""

    first_frame: Float[Tensor, "1 c4 f h8 w8"]
    #: None for a DiT without CLIP image input (Wan2.2 I2V-A14B's experts).
    clip: Float[Tensor, "1 257 1280"] | None = None

    def attach(
        self, dit: nn.Module, latents: Float[Tensor, "1 c f h8 w8"], context: Float[Tensor, "b l d"]
    ) -> tuple[Float[Tensor, "1 c2 f h8 w8"], Float[Tensor, "b l2 d"]]:
        """The DiT input with the first-frame channels, and the embedded text ``context`` (already through
        ``dit.text_embedding``) with the embedded CLIP tokens, if any, before it (one copy per context of the batch)."""
        if self.first_frame.shape[2:] != latents.shape[2:]:
            raise ValueError(
                f"the image conditioning was made for a {tuple(self.first_frame.shape[2:])} latent, not "
                f"{tuple(latents.shape[2:])}: encode the image for this video's size and frame count"
            )
        first_frame = torch.cat([latents, self.first_frame.to(device=latents.device, dtype=latents.dtype)], dim=1)
        if self.clip is None:
            return first_frame, context
        clip = dit.img_emb(self.clip.to(device=context.device, dtype=context.dtype))
        return first_frame, torch.cat([clip.expand(len(context), -1, -1), context], dim=1)

    def timesteps(self, timestep: Float[Tensor, "1"], latents: Tensor, patch_size: Sequence[int]) -> Tensor:
        """Every token's timestep: the one of the step."""
        return timestep


@dataclass(frozen=True)
class FusedFirstFrame:
    """Wan2.2 TI2V's first frame: its VAE latent ``(1, C, 1, H/16, W/16)``, fused into the first latent frame."""

    latent: Float[Tensor, "1 c 1 h16 w16"]

    def fuse(self, latents: Float[Tensor, "1 c f h16 w16"]) -> Float[Tensor, "1 c f h16 w16"]:
        """``latents`` with the first frame's latent in place of their first frame (no gradient flows to it)."""
        if self.latent.shape[:2] != latents.shape[:2] or self.latent.shape[3:] != latents.shape[3:]:
            raise ValueError(
                f"the first frame's latent {tuple(self.latent.shape)} does not fit latents {tuple(latents.shape)}: "
                "encode the image at this video's size"
            )
        return torch.cat([self.latent.to(device=latents.device, dtype=latents.dtype), latents[:, :, 1:]], dim=2)

    def attach(self, dit: nn.Module, latents: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        """The DiT input with the first frame fused in; the context as it is."""
        return self.fuse(latents), context

    def timesteps(
        self, timestep: Float[Tensor, "1"], latents: Tensor, patch_size: Sequence[int]
    ) -> Float[Tensor, "1 s"]:
        """Every token's timestep: 0 for the first frame's tokens (clean), the step's for the others (diffsynth's
        ``seperated_timestep`` with ``fuse_vae_embedding_in_latents``)."""
        frames, rows, cols = (size // patch for size, patch in zip(latents.shape[2:], patch_size))
        per_frame = rows * cols
        clean = torch.zeros(per_frame, dtype=timestep.dtype, device=timestep.device)
        return torch.cat([clean, timestep.expand((frames - 1) * per_frame)])[None]


#: What a DiT pass reads of a first frame.
Conditioning = Union[ImageConditioning, FusedFirstFrame]


class FirstFrameConditioned:
    """Mixin of a :class:`~.wan.WanBackbone` whose runs are conditioned on a first frame: ``encode_image`` makes the
    conditioning, :meth:`conditioned_on` puts it in effect for every DiT pass inside."""

    #: A run takes a first frame (the pipeline's ``image``, or the reference's first frame).
    takes_image = True
    image_conditioning: Conditioning | None

    @contextlib.contextmanager
    def conditioned_on(self, conditioning: Conditioning) -> Iterator[None]:
        """Every velocity and feature capture inside reads ``conditioning``."""
        if not isinstance(conditioning, (ImageConditioning, FusedFirstFrame)):
            raise TypeError(f"conditioning must come from encode_image, got {type(conditioning).__name__}")
        previous, self.image_conditioning = self.image_conditioning, conditioning
        try:
            yield
        finally:
            self.image_conditioning = previous


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
