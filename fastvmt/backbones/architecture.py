"""Hyper-parameters of Wan's networks (DiT, umT5, VAE; the CLIP image encoder of Wan2.1 image-to-video),
inferred from the tensor shapes of their checkpoints.

diffsynth recognises a checkpoint by an MD5 of its key names and shapes, so it only knows the released
sizes. fastvmt reads the sizes off the tensors instead, so the 1.3B, the 14B and any other size (the tiny
test model) load through the same code. What the shapes cannot tell:

- the DiT's head count (q/k/v are ``dim x dim``): taken from ``config.json``'s ``num_heads`` when the
  checkpoint has one (Wan ships it; the tiny model needs it, its heads are not 128 wide), else ``dim / 128``,
  Wan's head width;
- ``eps`` and ``text_len`` (tokens of text context): ``config.json`` or Wan's 1e-6 and 512.

``RELEASED_DITS`` holds the sizes of the released text-to-video DiTs (the cost model and the benchmarks use
them; their loading is tested against diffsynth's fingerprints of the released files).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "CLIP_FEATURE_DIM",
    "CLIP_TOKENS",
    "DiTConfig",
    "FIRST_FRAME_MASK_CHANNELS",
    "ImageEncoderConfig",
    "RELEASED_DITS",
    "RELEASED_TEXT_ENCODER",
    "RELEASED_I2V_DIT",
    "RELEASED_TI2V_DIT",
    "WAN22_LATENT_CHANNELS",
    "WAN22_VAE",
    "TextEncoderConfig",
    "VAEConfig",
    "WAN_HEAD_DIM",
    "WAN_LATENT_CHANNELS",
    "MAX_TEXT_LEN",
    "check_compatible",
    "check_stored_config",
    "infer_dit_config",
    "infer_image_encoder_config",
    "infer_text_encoder_config",
    "infer_vae_config",
]

WAN_HEAD_DIM = 128
WAN_TEXT_LEN = 512
WAN_EPS = 1e-6
#: Channels of Wan2.1's VAE latent: what the DiT takes in and puts out.
WAN_LATENT_CHANNELS = 16
#: Channels of Wan2.2's VAE latent (``Wan2.2_VAE.pth``, 16x spatial compression: TI2V-5B).
WAN22_LATENT_CHANNELS = 48
#: Input channels of each VAE's encoder: RGB, or RGB patchified 2x2 (Wan2.2's VAE, hence 16x instead of 8x).
_VAE_INPUT_CHANNELS = {3: WAN_LATENT_CHANNELS, 12: WAN22_LATENT_CHANNELS}
#: Wan2.2 VAE's decoder widens its first block to ``decoder_dim * 4`` (``dim_mult[-1]``).
_VAE38_DECODER_MULT = 4

#: Wan2.1 image-to-video conditioning (diffsynth's ``WanModel`` with ``has_image_input``): the first frame's latent
#: and a mask of 4 channels (one per video frame of a latent frame) join the noisy latent as extra input channels,
#: and the CLIP image encoder's 257 tokens of 1280 (``img_emb``'s input width) join the text context.
FIRST_FRAME_MASK_CHANNELS = 4
CLIP_TOKENS = 257
CLIP_FEATURE_DIM = 1280
#: Width of one head of the CLIP vision transformer (ViT-H/14: 1280 wide, 16 heads).
CLIP_HEAD_DIM = 80

#: The most tokens of text context: 8 times Wan's 512. Every prompt is padded to ``text_len`` tokens and the DiT's
#: cross-attention reads them all, so config.json's value sizes what each prompt allocates.
MAX_TEXT_LEN = 8 * WAN_TEXT_LEN

Shapes = Mapping[str, tuple[int, ...]]

#: The config.json keys the DiT reads (the others are Wan's own bookkeeping), with their bounds.
_STORED_INTS = {"dim": None, "ffn_dim": None, "num_heads": None, "num_layers": None, "in_dim": None, "out_dim": None,
                "text_dim": None, "freq_dim": None, "text_len": MAX_TEXT_LEN}


def check_stored_config(stored: Mapping[str, Any], source: object = "config.json") -> dict[str, Any]:
    """``stored`` (a checkpoint's config.json) if the values the DiT reads are of the right type and range;
    ``ValueError`` naming ``source`` (the file) and the key otherwise. Checked before any weight is read."""
    from fastvmt.values import check_int, check_real

    try:
        for key, high in _STORED_INTS.items():
            if key in stored:
                check_int(key, stored[key], low=1, high=high)
        if "eps" in stored:
            check_real("eps", stored["eps"], low=0.0, high=1.0, low_open=True, high_open=True)
        if "model_type" in stored and not isinstance(stored["model_type"], str):
            raise ValueError(f"model_type must be a string such as 't2v', got {stored['model_type']!r}")
        patch = stored.get("patch_size", [1, 1, 1])
        if not isinstance(patch, list) or len(patch) != 3:
            raise ValueError(f"patch_size must be a list of 3 integers, got {patch!r}")
        for size in patch:
            check_int("patch_size entries", size, low=1)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    return dict(stored)


@dataclass(frozen=True)
class DiTConfig:
    """Arguments of diffsynth's ``WanModel`` for a text-to-video DiT."""

    dim: int
    ffn_dim: int
    num_heads: int
    num_layers: int
    in_dim: int = WAN_LATENT_CHANNELS
    out_dim: int = WAN_LATENT_CHANNELS
    text_dim: int = 4096
    freq_dim: int = 256
    patch_size: tuple[int, int, int] = (1, 2, 2)
    eps: float = WAN_EPS
    text_len: int = WAN_TEXT_LEN
    has_image_input: bool = False

    @property
    def image_channels(self) -> int:
        """Input channels beyond the noisy latent: first-frame mask and latent (image-to-video), else 0."""
        return self.in_dim - self.out_dim

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``diffsynth.models.wan_video_dit.WanModel``."""
        kwargs = asdict(self)
        del kwargs["text_len"]
        return {**kwargs, "patch_size": list(self.patch_size)}

    def stored(self) -> dict[str, Any]:
        """The ``config.json`` Wan ships with its DiT (same keys)."""
        stored = {**asdict(self), "patch_size": list(self.patch_size)}
        del stored["has_image_input"]
        return {"_class_name": "WanModel", "model_type": "i2v" if self.has_image_input else "t2v", **stored}


#: The released Wan2.1 text-to-video DiTs (docs/algorithm.md#wan-sizes); their text, frequency-embedding, patch
#: and latent sizes are ``DiTConfig``'s defaults.
RELEASED_DITS = {
    "1.3B": DiTConfig(dim=1536, ffn_dim=8960, num_heads=12, num_layers=30),
    "14B": DiTConfig(dim=5120, ffn_dim=13824, num_heads=40, num_layers=40),
}
#: The released Wan2.2 TI2V-5B DiT: 48 latent channels in and out (Wan2.2's VAE); a first frame is fused into the
#: latent (docs/algorithm.md#ti2v), not added as channels.
RELEASED_TI2V_DIT = DiTConfig(
    dim=3072, ffn_dim=14336, num_heads=24, num_layers=30, in_dim=WAN22_LATENT_CHANNELS, out_dim=WAN22_LATENT_CHANNELS
)
#: The released Wan2.1 image-to-video DiT (one architecture for the 480P and the 720P weights).
RELEASED_I2V_DIT = DiTConfig(
    dim=5120, ffn_dim=13824, num_heads=40, num_layers=40,
    in_dim=2 * WAN_LATENT_CHANNELS + FIRST_FRAME_MASK_CHANNELS, has_image_input=True,
)


@dataclass(frozen=True)
class ImageEncoderConfig:
    """The vision tower of diffsynth's ``XLMRobertaCLIP`` (open-clip XLM-RoBERTa-large ViT-H/14 as released)."""

    image_size: int = 224
    patch_size: int = 14
    vision_dim: int = CLIP_FEATURE_DIM
    vision_mlp_ratio: float = 4
    vision_layers: int = 32
    embed_dim: int = 1024

    @property
    def vision_heads(self) -> int:
        return self.vision_dim // CLIP_HEAD_DIM


@dataclass(frozen=True)
class TextEncoderConfig:
    """Arguments of diffsynth's ``WanTextEncoder`` (an umT5 encoder)."""

    vocab: int
    dim: int
    dim_attn: int
    dim_ffn: int
    num_heads: int
    num_layers: int
    num_buckets: int = 32
    shared_pos: bool = False


#: The umT5-XXL encoder Wan2.1 ships (``models_t5_umt5-xxl-enc-bf16.pth``, 5.68 billion parameters); the released
#: VAE is ``VAEConfig()``'s defaults.
RELEASED_TEXT_ENCODER = TextEncoderConfig(
    vocab=256384, dim=4096, dim_attn=4096, dim_ffn=10240, num_heads=64, num_layers=24
)


@dataclass(frozen=True)
class VAEConfig:
    """Arguments of diffsynth's inner ``VideoVAE_`` (Wan2.1's VAE: dim 96, z_dim 16) or, with a ``decoder_dim``,
    ``VideoVAE38_`` (Wan2.2's: dim 160, decoder 256, z_dim 48, 16x spatial compression)."""

    dim: int = 96
    z_dim: int = WAN_LATENT_CHANNELS
    decoder_dim: int | None = None


#: Wan2.2's released VAE (``Wan2.2_VAE.pth``).
WAN22_VAE = VAEConfig(dim=160, z_dim=WAN22_LATENT_CHANNELS, decoder_dim=256)


def _shape(shapes: Shapes, name: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(shapes[name])
    except KeyError:
        raise ValueError(f"not a Wan2.1 {what} checkpoint: tensor {name!r} is missing") from None


def _count_blocks(shapes: Shapes, prefix: str = "blocks") -> int:
    pattern = re.compile(rf"{prefix}\.(\d+)\.")
    indices = {int(m.group(1)) for name in shapes if (m := pattern.match(name))}
    if not indices or indices != set(range(len(indices))):
        raise ValueError(f"checkpoint blocks are not numbered 0..n-1: found {sorted(indices)[:8]}...")
    return len(indices)


def _rope_compatible(head_dim: int) -> bool:
    # diffsynth splits a head into (frame, row, col) RoPE parts of d - 2(d//3), d//3, d//3 channels, each in pairs.
    third = head_dim // 3
    return head_dim % 2 == 0 and third % 2 == 0 and (head_dim - 2 * third) % 2 == 0


#: The ``model_type`` values of the DiTs fastvmt loads (Wan's config.json).
_MODEL_TYPES = ("t2v", "i2v", "ti2v")


def infer_dit_config(shapes: Shapes, stored: Mapping[str, Any] | None = None) -> DiTConfig:
    """The DiT's sizes from its tensors; ``stored`` (config.json) supplies heads/eps/text_len and is checked
    (:func:`check_stored_config`, then against the tensors)."""
    stored = check_stored_config(stored or {})
    has_image_input = any(name.startswith("img_emb.") for name in shapes)
    dim, in_dim, *patch = _shape(shapes, "patch_embedding.weight", "DiT")
    patch_size = (patch[0], patch[1], patch[2])
    head_out = _shape(shapes, "head.head.weight", "DiT")[0]
    out_dim = head_out // (patch_size[0] * patch_size[1] * patch_size[2])
    # Image-to-video: first-frame channels, with CLIP features (Wan2.1) or without (Wan2.2 I2V-A14B's experts).
    first_frame_input = in_dim == 2 * out_dim + FIRST_FRAME_MASK_CHANNELS
    model_type = stored.get("model_type", "i2v" if has_image_input or first_frame_input else "t2v")
    if "img_emb.emb_pos" in shapes or model_type not in _MODEL_TYPES or (has_image_input and model_type != "i2v"):
        raise ValueError(
            f"this Wan DiT (model_type {model_type!r}, image embedding: {has_image_input}) is neither Wan2.1 "
            "text-to-video nor image-to-video nor Wan2.2 TI2V; fastvmt loads Wan2.1-T2V-1.3B/14B, "
            "Wan2.1-I2V-14B-480P/720P, Wan2.2-TI2V-5B and Wan2.2-T2V/I2V-A14B (`fastvmt backbones` lists them)"
        )
    num_layers = _count_blocks(shapes)
    if "num_heads" in stored:
        num_heads = stored["num_heads"]
    elif dim % WAN_HEAD_DIM == 0:
        num_heads = dim // WAN_HEAD_DIM
    else:
        raise ValueError(
            f"cannot tell the DiT's head count: dim {dim} is not a multiple of Wan's head width {WAN_HEAD_DIM}; "
            "add a config.json with 'num_heads' next to the weights"
        )
    config = DiTConfig(
        dim=dim,
        ffn_dim=_shape(shapes, "blocks.0.ffn.0.weight", "DiT")[0],
        num_heads=num_heads,
        num_layers=num_layers,
        in_dim=in_dim,
        out_dim=out_dim,
        text_dim=_shape(shapes, "text_embedding.0.weight", "DiT")[1],
        freq_dim=_shape(shapes, "time_embedding.0.weight", "DiT")[1],
        patch_size=patch_size,
        eps=float(stored.get("eps", WAN_EPS)),
        text_len=stored.get("text_len", WAN_TEXT_LEN),
        has_image_input=has_image_input,
    )
    if (model_type == "i2v") != first_frame_input or (model_type != "i2v" and in_dim != out_dim):
        raise ValueError(
            f"a {model_type} DiT taking {in_dim} channels to {out_dim}: a text-to-video DiT takes as many as it gives, "
            f"an image-to-video one also the first frame's latent and a {FIRST_FRAME_MASK_CHANNELS}-channel mask "
            f"({2 * out_dim + FIRST_FRAME_MASK_CHANNELS})"
        )
    for key in ("dim", "ffn_dim", "num_layers", "in_dim", "out_dim", "freq_dim", "text_dim"):
        if key in stored and stored[key] != getattr(config, key):
            raise ValueError(
                f"config.json says {key}={stored[key]} but the DiT weights have {key}={getattr(config, key)}"
            )
    if num_heads < 1 or dim % num_heads or not _rope_compatible(dim // num_heads):
        raise ValueError(
            f"num_heads={num_heads} does not fit dim={dim}: heads must divide dim into widths d with d and d//3 "
            "even (3D RoPE)"
        )
    return config


def infer_text_encoder_config(shapes: Shapes) -> TextEncoderConfig:
    """The umT5 encoder's sizes from its tensors."""
    vocab, dim = _shape(shapes, "token_embedding.weight", "umT5 text encoder")
    shared_pos = "pos_embedding.embedding.weight" in shapes
    position = "pos_embedding.embedding.weight" if shared_pos else "blocks.0.pos_embedding.embedding.weight"
    num_buckets, num_heads = _shape(shapes, position, "umT5 text encoder")
    return TextEncoderConfig(
        vocab=vocab,
        dim=dim,
        dim_attn=_shape(shapes, "blocks.0.attn.q.weight", "umT5 text encoder")[0],
        dim_ffn=_shape(shapes, "blocks.0.ffn.fc1.weight", "umT5 text encoder")[0],
        num_heads=num_heads,
        num_layers=_count_blocks(shapes),
        num_buckets=num_buckets,
        shared_pos=shared_pos,
    )


def infer_vae_config(shapes: Shapes) -> VAEConfig:
    """The VAE's widths and latent channels from its tensors (the rest is Wan's fixed layout): Wan2.1's VAE reads
    RGB, Wan2.2's RGB patchified 2x2 (12 channels)."""
    dim, inputs, *_ = _shape(shapes, "encoder.conv1.weight", "Wan VAE")
    z_dim = _shape(shapes, "conv2.weight", "Wan VAE")[0]
    if _VAE_INPUT_CHANNELS.get(inputs) != z_dim:
        raise ValueError(
            f"the VAE reads {inputs} channels into {z_dim} latent channels; fastvmt supports Wan2.1's VAE "
            f"(Wan2.1_VAE.pth: 3 -> {WAN_LATENT_CHANNELS}) and Wan2.2's (Wan2.2_VAE.pth: 12 -> {WAN22_LATENT_CHANNELS})"
        )
    if inputs == 3:
        return VAEConfig(dim=dim, z_dim=z_dim)
    decoder = _shape(shapes, "decoder.conv1.weight", "Wan VAE")[0]
    return VAEConfig(dim=dim, z_dim=z_dim, decoder_dim=decoder // _VAE38_DECODER_MULT)


def infer_image_encoder_config(shapes: Shapes) -> ImageEncoderConfig:
    """The CLIP vision tower's sizes from its tensors (``visual.*``; the file's text tower is not used)."""
    what = "CLIP image encoder"
    vision_dim, _, patch_size, _ = _shape(shapes, "visual.patch_embedding.weight", what)
    positions = _shape(shapes, "visual.pos_embedding", what)[1]
    side = math.isqrt(positions - 1)
    if side * side != positions - 1 or positions != CLIP_TOKENS or vision_dim != CLIP_FEATURE_DIM:
        raise ValueError(
            f"the {what} gives {positions} tokens of {vision_dim}; Wan's image-to-video DiT takes "
            f"{CLIP_TOKENS} of {CLIP_FEATURE_DIM} (open-clip XLM-RoBERTa-large ViT-H/14)"
        )
    return ImageEncoderConfig(
        image_size=side * patch_size,
        patch_size=patch_size,
        vision_dim=vision_dim,
        vision_mlp_ratio=_shape(shapes, "visual.transformer.0.mlp.0.weight", what)[0] / vision_dim,
        vision_layers=_count_blocks(shapes, r"visual\.transformer"),
        embed_dim=_shape(shapes, "visual.head", what)[1],
    )


def check_compatible(dit: DiTConfig, text: TextEncoderConfig, vae: VAEConfig) -> None:
    """``ValueError`` if the three networks cannot work together (mixed-up checkpoint files)."""
    if dit.text_dim != text.dim:
        raise ValueError(f"the DiT expects {dit.text_dim}-d text features but the text encoder gives {text.dim}-d")
    if dit.out_dim != vae.z_dim or dit.image_channels not in (0, vae.z_dim + FIRST_FRAME_MASK_CHANNELS):
        raise ValueError(
            f"the DiT maps {dit.in_dim} -> {dit.out_dim} latent channels but the VAE has {vae.z_dim}"
        )
