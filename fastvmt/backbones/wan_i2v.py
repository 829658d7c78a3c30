"""Wan2.1 image-to-video (Wan2.1-I2V-14B-480P / -720P, or any size) as a fastvmt backbone.

The text-to-video :class:`~fastvmt.backbones.wan.WanBackbone` plus diffsynth's CLIP image encoder: a run encodes
its first frame once (:meth:`WanI2VBackbone.encode_image`) and every DiT pass of the run, velocity and guidance
features alike, reads that conditioning (:mod:`fastvmt.backbones.conditioning`; docs/algorithm.md#image-to-video).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float
from torch import Tensor, nn

from fastvmt.backbones.conditioning import (
    FirstFrameConditioned,
    ImageConditioning,
    first_frame_mask,
    first_frame_video,
)
from fastvmt.backbones.families import WAN21_I2V, WanFamily
from fastvmt.backbones.wan import WanBackbone

if TYPE_CHECKING:
    from pathlib import Path

    from fastvmt.backbones.checkpoint import CheckpointFiles

__all__ = ["WanI2VBackbone", "masked_first_frame"]

log = logging.getLogger(__name__)


def masked_first_frame(backbone: WanBackbone, image: Float[Tensor, "3 h w"], num_frames: int) -> Tensor:
    """The first-frame channels ``(1, 4 + C, F, H/8, W/8)`` of a ``num_frames``-frame video: the mask and the VAE
    latent of ``image`` (in [-1, 1], at the video's size) followed by black frames, in the backbone's dtype."""
    geometry = backbone.geometry(num_frames, image.shape[1], image.shape[2])
    latent = backbone.encode_video(first_frame_video(image, num_frames))
    mask = first_frame_mask(num_frames, *geometry.latent_shape[3:]).to(device=backbone.device, dtype=backbone.dtype)
    return torch.cat([mask[None], latent], dim=1)


class WanI2VBackbone(FirstFrameConditioned, WanBackbone):
    """Wan2.1 image-to-video on diffsynth's networks: :class:`WanBackbone`'s arguments plus ``image_encoder``
    (diffsynth's ``WanImageEncoder``). Every DiT pass needs a first frame: :meth:`conditioned_on`."""

    def __init__(self, dit: nn.Module, vae: nn.Module, text_encoder: nn.Module, tokenizer: Any,
                 image_encoder: nn.Module, **options: Any):
        from fastvmt.backbones.modules import prepare
        from fastvmt.backbones.offload import default_vram_limit, enable_offload

        super().__init__(dit, vae, text_encoder, tokenizer, **options)
        if not getattr(self.dit, "has_image_input", False):
            raise ValueError("WanI2VBackbone needs an image-to-video DiT (diffsynth WanModel with has_image_input)")
        image_encoder = prepare(image_encoder, self.dtype)
        if self.offload is None:
            self.image_encoder = image_encoder.to(self.device)
        else:
            limit = options.get("vram_limit")
            if limit is None and self.device.type == "cuda":
                limit = default_vram_limit(self.device)
            self.image_encoder = enable_offload(image_encoder, self.device, self.dtype, limit)

    @classmethod
    def _family(cls, model_dir: str | Path) -> WanFamily:
        return WAN21_I2V

    @classmethod
    def _load_family_networks(cls, files: CheckpointFiles, dtype: torch.dtype, device: torch.device) -> dict[str, Any]:
        from fastvmt.backbones import architecture as arch
        from fastvmt.backbones import checkpoint, modules

        path = files.extra[checkpoint.IMAGE_ENCODER_FILE]
        log.info("loading the CLIP image encoder from %s", path.name)
        state = checkpoint.read_state_dict(path, dtype, device)
        config = arch.infer_image_encoder_config({name: tuple(t.shape) for name, t in state.items()})
        encoder = modules.build_image_encoder(config)
        modules.load_weights(encoder, modules.image_encoder_state_dict(state), "CLIP image encoder")
        return {"image_encoder": encoder}

    def _use(self, module: nn.Module) -> None:
        if self.offload is not None and self._active is not module:
            from fastvmt.backbones.offload import activate

            activate((self.dit, self.vae, self.text_encoder, self.image_encoder), module)
            self._active = module

    def encode_image(self, image: Float[Tensor, "3 h w"], num_frames: int) -> ImageConditioning:
        """The conditioning of a ``num_frames``-frame video on its first frame ``image`` (in [-1, 1], at the video's
        size): CLIP features and the masked first-frame latent, in the backbone's dtype and device."""
        first_frame = masked_first_frame(self, image, num_frames)
        self._use(self.image_encoder)
        with torch.no_grad():
            clip = self.image_encoder.encode_image([image[None].to(device=self.device, dtype=self.dtype)])
        return ImageConditioning(clip=clip.to(self.dtype), first_frame=first_frame)

    def _require_conditioning(self) -> None:
        if self.image_conditioning is None:
            raise RuntimeError(
                "an image-to-video backbone reads a first frame on every DiT pass: run it inside "
                "`with backbone.conditioned_on(backbone.encode_image(image, num_frames)):`"
            )

    # WanBackbone's velocity and features, with their arguments as they are, once a conditioning is in effect.
    def velocity(self, *args: Any, **kwargs: Any) -> Tensor:
        self._require_conditioning()
        return super().velocity(*args, **kwargs)

    def features(self, *args: Any, **kwargs: Any) -> Any:
        self._require_conditioning()
        return super().features(*args, **kwargs)
