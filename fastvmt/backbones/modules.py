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
from diffsynth.models.wan_video_vae import VideoVAE_, WanVideoVAE
from diffsynth.utils.state_dict_converters.wan_video_dit import (
    WanVideoDiTFromDiffusers,
    WanVideoDiTStateDictConverter,
)
from torch import Tensor, nn

from fastvmt.backbones.architecture import DiTConfig, TextEncoderConfig, VAEConfig

__all__ = ["build_dit", "build_text_encoder", "build_vae", "dit_state_dict", "load_weights", "vae_state_dict"]


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
    """diffsynth's ``WanVideoVAE`` around a ``VideoVAE_`` of width ``config.dim``.

    ``WanVideoVAE`` always builds the released width (dim 96, ~127M parameters); it is built empty here and
    its inner network replaced, so a tiny VAE costs nothing extra.
    """
    with skip_model_initialization():
        vae = WanVideoVAE(z_dim=config.z_dim)
    with _construction(initialize):
        vae.model = VideoVAE_(dim=config.dim, z_dim=config.z_dim)
    return vae


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
