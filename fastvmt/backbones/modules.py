"""diffsynth's Wan2.1 networks built from a config, and checkpoint tensors loaded into them.

Imports diffsynth (slow, ~5 s): only the loading and forward code imports this module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import torch
from diffsynth.core.vram.initialization import skip_model_initialization
from diffsynth.models.wan_video_dit import WanModel
from diffsynth.models.wan_video_text_encoder import WanTextEncoder
from diffsynth.models.wan_video_vae import VideoVAE38_, VideoVAE_, WanVideoVAE, WanVideoVAE38
from diffsynth.utils.state_dict_converters.wan_video_dit import (
    WanVideoDiTFromDiffusers,
    WanVideoDiTStateDictConverter,
)
from torch import Tensor, nn

from fastvmt.backbones.architecture import DiTConfig, ImageEncoderConfig, TextEncoderConfig, VAEConfig

__all__ = [
    "build_dit",
    "build_image_encoder",
    "build_text_encoder",
    "build_vae",
    "dit_state_dict",
    "image_encoder_state_dict",
    "load_weights",
    "vae_state_dict",
]


@contextlib.contextmanager
def _construction(initialize: bool) -> Iterator[None]:
    """Random initialisation, or none at all (parameters on the meta device, to be assigned from a file)."""
    with skip_model_initialization() if not initialize else contextlib.nullcontext():
        yield


def dit_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """DiT tensors under diffsynth's names: Wan's native names pass (``model.`` prefixes are dropped), and
    diffusers-format names (``condition_embedder.*``, ``attn1.to_q``) are converted by diffsynth's converter."""
    if any(name.startswith("condition_embedder.") for name in state):
        return WanVideoDiTFromDiffusers(state)
    return WanVideoDiTStateDictConverter(state)


def vae_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """VAE tensors under ``VideoVAE_``'s names (a ``model.`` prefix, as in diffsynth's wrapper, is dropped)."""
    if all(name.startswith("model.") for name in state):
        return {name.removeprefix("model."): tensor for name, tensor in state.items()}
    return dict(state)


def build_dit(config: DiTConfig, *, initialize: bool = False) -> WanModel:
    """diffsynth's ``WanModel`` of these sizes (random weights if ``initialize``, else empty)."""
    with _construction(initialize):
        return WanModel(**config.model_kwargs())


def build_text_encoder(config: TextEncoderConfig, *, initialize: bool = False) -> WanTextEncoder:
    """diffsynth's ``WanTextEncoder`` (umT5) of these sizes."""
    with _construction(initialize):
        return WanTextEncoder(
            vocab=config.vocab,
            dim=config.dim,
            dim_attn=config.dim_attn,
            dim_ffn=config.dim_ffn,
            num_heads=config.num_heads,
            num_layers=config.num_layers,
            num_buckets=config.num_buckets,
            shared_pos=config.shared_pos,
        )


def build_vae(config: VAEConfig, *, initialize: bool = False) -> WanVideoVAE:
    """diffsynth's ``WanVideoVAE`` around a ``VideoVAE_`` of width ``config.dim`` (``WanVideoVAE38`` around a
    ``VideoVAE38_`` for Wan2.2's VAE, ``config.decoder_dim`` set).

    ``WanVideoVAE`` always builds the released width (dim 96, ~127M parameters); it is built empty here and
    its inner network replaced, so a tiny VAE costs nothing extra.
    """
    if config.decoder_dim is not None:  # Wan2.2's VAE
        with skip_model_initialization():
            vae = WanVideoVAE38(z_dim=config.z_dim)
        with _construction(initialize):
            vae.model = VideoVAE38_(dim=config.dim, z_dim=config.z_dim, dec_dim=config.decoder_dim)
        return vae
    with skip_model_initialization():
        vae = WanVideoVAE(z_dim=config.z_dim)
    with _construction(initialize):
        vae.model = VideoVAE_(dim=config.dim, z_dim=config.z_dim)
    return vae


def image_encoder_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The CLIP file's tensors under ``WanImageEncoder``'s names (diffsynth's converter: ``model.`` prefixed, the
    unused text tower ``textual.*`` dropped)."""
    from diffsynth.utils.state_dict_converters.wan_video_image_encoder import WanImageEncoderStateDictConverter

    return WanImageEncoderStateDictConverter(state)


def build_image_encoder(config: ImageEncoderConfig, *, initialize: bool = False) -> nn.Module:
    """diffsynth's ``WanImageEncoder`` (``encode_image``: CLIP ViT features of the penultimate block, normalised with
    diffsynth's CLIP transforms) with a vision tower of ``config``'s sizes, empty (meta) unless ``initialize``.

    ``WanImageEncoder()`` itself allocates the released 632M parameters on the CPU first, so the wrapper is made
    without its ``__init__`` and given the network diffsynth's own ``_clip`` factory builds at these sizes.
    """
    from diffsynth.models import wan_video_image_encoder as clip

    encoder = clip.WanImageEncoder.__new__(clip.WanImageEncoder)
    nn.Module.__init__(encoder)
    encoder.model, encoder.transforms = clip._clip(
        pretrained=False, pretrained_name="open-clip-xlm-roberta-large-vit-huge-14", model_cls=clip.XLMRobertaCLIP,
        return_transforms=True, device="cpu" if initialize else "meta",
        embed_dim=config.embed_dim, image_size=config.image_size, patch_size=config.patch_size,
        vision_dim=config.vision_dim, vision_mlp_ratio=config.vision_mlp_ratio, vision_heads=config.vision_heads,
        vision_layers=config.vision_layers, vision_pool="token", activation="gelu",
        attn_dropout=0.0, proj_dropout=0.0, embedding_dropout=0.0,
    )
    return encoder


def load_weights(module: nn.Module, state: Mapping[str, Tensor], what: str) -> None:
    """Assign ``state`` to ``module``'s parameters; ``ValueError`` naming missing/unexpected tensors."""
    result = module.load_state_dict(dict(state), strict=False, assign=True)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"the {what} weights do not match the architecture inferred from them: "
            f"missing {result.missing_keys[:5]} ({len(result.missing_keys)} in all), "
            f"unexpected {result.unexpected_keys[:5]} ({len(result.unexpected_keys)} in all)"
        )


def prepare(module: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Inference mode: eval (no dropout), frozen weights (gradients flow to inputs only), ``dtype``."""
    return module.eval().requires_grad_(False).to(dtype=dtype)
