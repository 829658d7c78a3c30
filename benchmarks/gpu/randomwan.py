"""A Wan2.1 backbone of any size with random weights, built directly on the device (no checkpoint files).

The DiT has the sizes of a ``DiTConfig`` (on a GPU the 1.3B of ``fastvmt.backbones.architecture.RELEASED_DITS``) and
diffsynth's own initialisation (PyTorch's defaults: linear weights uniform in +-1/sqrt(fan_in), modulation
N(0, 1/dim)). That initialisation already keeps activations bounded: on the 1.3B in bfloat16, every one of the
30 blocks outputs std ~0.6 and the velocity std ~0.6, and gradients through 14 blocks are finite (measured on a
CPU); each run reports whether its final latents are finite. The VAE is diffsynth's at the width given (96 is
the released one).

No umT5 weights exist here, so the text side is a stand-in with the DiT's interface: a byte tokenizer (UTF-8
bytes, ``</s>``, padding to the text length) and a one-layer umT5 encoder of the DiT's text width with a narrow
attention and FFN (64), random. It costs nothing next to the DiT; the real umT5-XXL encodes a prompt once per
run, which a measured run would add to its ``encode`` phase.
"""

from __future__ import annotations

import torch

from fastvmt.backbones.architecture import DiTConfig, TextEncoderConfig, VAEConfig
from fastvmt.backbones.modules import build_dit, build_text_encoder, build_vae
from fastvmt.backbones.wan import WanBackbone

__all__ = ["ByteTokenizer", "random_wan", "share_networks"]

_SPECIALS = 3  # <pad>=0, </s>=1, <unk>=2, as umT5 numbers them
STAND_IN_WIDTH = 64


class ByteTokenizer:
    """``tokenizer(text, return_mask=True, add_special_tokens=True) -> (ids, mask)``, each ``(1, seq_len)``."""

    vocab = 256 + _SPECIALS

    def __init__(self, seq_len: int):
        self.seq_len = seq_len

    def __call__(self, text: str, return_mask: bool = False, add_special_tokens: bool = True):
        ids = [byte + _SPECIALS for byte in text.encode("utf-8")][: self.seq_len - 1]
        if add_special_tokens:
            ids.append(1)
        tokens = torch.zeros(1, self.seq_len, dtype=torch.long)
        tokens[0, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        mask = (torch.arange(self.seq_len) < len(ids)).long()[None]
        return (tokens, mask) if return_mask else tokens


def random_wan(
    config: DiTConfig, *, vae_dim: int, device: str | torch.device, dtype: torch.dtype, seed: int = 0,
    **options,
) -> WanBackbone:
    """A :class:`WanBackbone` of the DiT ``config`` and a VAE of width ``vae_dim``, random weights created on
    ``device``; ``options`` go to its constructor (e.g. ``cfg_batch=True``)."""
    device = torch.device(device)
    tokenizer = ByteTokenizer(config.text_len)
    text = TextEncoderConfig(
        vocab=ByteTokenizer.vocab, dim=config.text_dim, dim_attn=STAND_IN_WIDTH, dim_ffn=STAND_IN_WIDTH,
        num_heads=1, num_layers=1,
    )
    torch.manual_seed(seed)
    with torch.device(device):
        dit = build_dit(config, initialize=True)
        vae = build_vae(VAEConfig(dim=vae_dim), initialize=True)
        text_encoder = build_text_encoder(text, initialize=True)
    return WanBackbone(dit, vae, text_encoder, tokenizer, dtype=dtype, device=device, **options)


def share_networks(backbone: WanBackbone, **options) -> WanBackbone:
    """Another :class:`WanBackbone` over the same networks (no copy), with other constructor ``options``."""
    return WanBackbone(
        backbone.dit, backbone.vae, backbone.text_encoder, backbone.tokenizer,
        dtype=backbone.dtype, device=backbone.device, **options,
    )
