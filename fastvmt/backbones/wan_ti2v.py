"""Wan2.2 TI2V-5B (text- and image-to-video, 48-channel latents of Wan2.2's 16x VAE) as a fastvmt backbone.

The text-to-video :class:`~fastvmt.backbones.wan.WanBackbone` with Wan2.2's VAE; a run's first frame is fused into
the first latent frame, which the DiT sees clean (timestep 0) on every pass, velocity and guidance features alike,
and which the decoder reads (:class:`~fastvmt.backbones.conditioning.FusedFirstFrame`; docs/algorithm.md#ti2v).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jaxtyping import Float
from torch import Tensor

from fastvmt.backbones.conditioning import FirstFrameConditioned, FusedFirstFrame
from fastvmt.backbones.families import WAN22_TI2V, WanFamily
from fastvmt.backbones.wan import WanBackbone

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["WanTI2VBackbone"]


class WanTI2VBackbone(FirstFrameConditioned, WanBackbone):
    """Wan2.2 TI2V-5B on diffsynth's networks (:class:`WanBackbone`'s arguments). Without a conditioning in effect
    it is a text-to-video model; inside :meth:`conditioned_on` every pass reads the fused first frame."""

    @classmethod
    def _family(cls, model_dir: str | Path) -> WanFamily:
        return WAN22_TI2V

    def encode_image(self, image: Float[Tensor, "3 h w"], num_frames: int) -> FusedFirstFrame:
        """The first frame ``image`` (in [-1, 1], at the video's size) as its VAE latent ``(1, 48, 1, H/16, W/16)``;
        ``num_frames`` is checked against the video's geometry."""
        self.geometry(num_frames, image.shape[1], image.shape[2])
        return FusedFirstFrame(latent=self.encode_video(image[None]))

    def decode(self, latents: Tensor, **options: Any) -> Tensor:
        """Frames of ``latents`` with the first frame fused in while a conditioning is in effect."""
        if self.image_conditioning is not None:
            latents = self.image_conditioning.fuse(latents)
        return super().decode(latents, **options)
