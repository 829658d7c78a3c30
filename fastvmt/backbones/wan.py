"""Wan2.1 text-to-video (1.3B, 14B, or any size) as a fastvmt :class:`~fastvmt.interfaces.Backbone`.

The networks are diffsynth's (``WanModel``, ``WanTextEncoder``, ``WanVideoVAE``), built from sizes read off
the checkpoint's tensors (:mod:`fastvmt.backbones.architecture`) and loaded without executing code from the
files (:mod:`fastvmt.backbones.checkpoint`). diffsynth is imported on first load, not with this module.

Conventions: latents are ``(1, 16, F, H/8, W/8)`` in the backbone's dtype and device; ``timestep`` is the flow
matching ``sigma * 1000`` (sigma in [0, 1]); videos are ``(T, 3, H, W)`` frames in [-1, 1].
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float
from torch import Tensor, nn

from fastvmt.backbones import MODEL_DTYPES
from fastvmt.backbones.conditioning import Conditioning
from fastvmt.backbones.offload import OFFLOAD_CHOICES
from fastvmt.backbones.step_cache import BranchCache, StepCache, coefficients_model_id
from fastvmt.geometry import TEMPORAL_FACTOR, video_geometry
from fastvmt.interfaces import AttentionFeatures, Backbone, VideoGeometry, uses_cfg

if TYPE_CHECKING:
    from fastvmt.backbones.checkpoint import CheckpointFiles
    from fastvmt.backbones.families import WanFamily

__all__ = ["WanBackbone", "resolve_device"]

log = logging.getLogger(__name__)

#: diffsynth's Wan pipeline defaults for VAE tiling, in latent pixels.
VAE_TILE_SIZE = (30, 52)
VAE_TILE_STRIDE = (15, 26)
_FLOAT_DTYPES = tuple(getattr(torch, name) for name in MODEL_DTYPES)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a ``torch.device`` (None: CUDA when available, else the CPU); ``ValueError`` for a name torch
    does not know or a CUDA device this machine does not have."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {device!r} (e.g. cpu, cuda, cuda:1): {exc}") from None
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {device!r}: this machine has no CUDA device (torch.cuda.is_available() is "
                             "False); use the cpu")
        if resolved.index is not None and resolved.index >= count:
            raise ValueError(f"device {device!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    return resolved


def _check_options(
    dtype: torch.dtype, device: torch.device, offload: str | None, vram_limit: float | None
) -> None:
    if dtype not in _FLOAT_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(map(str, _FLOAT_DTYPES))}, got {dtype}")
    if offload not in OFFLOAD_CHOICES:
        raise ValueError(f"offload must be {' or '.join(map(repr, OFFLOAD_CHOICES))}, got {offload!r}")
    if vram_limit is not None:
        if offload is None:
            raise ValueError("vram_limit only applies with offload='cpu'")
        if device.type != "cuda":
            raise ValueError(f"vram_limit needs a CUDA device, got {device}")
        if vram_limit <= 0:
            raise ValueError(f"vram_limit is in GiB and must be positive, got {vram_limit}")


class WanBackbone(Backbone):
    """Wan2.1 text-to-video on diffsynth's networks.

    Build it with :meth:`from_pretrained` from a checkpoint directory, or from networks already in memory.

    Args:
        dit, vae, text_encoder: diffsynth's ``WanModel``, ``WanVideoVAE`` and ``WanTextEncoder``.
        tokenizer: diffsynth's ``HuggingfaceTokenizer`` (``tokenizer(text, return_mask=True,
            add_special_tokens=True) -> (ids, mask)``, padded to the text length).
        dtype, device: where and in what precision everything runs.
        offload: ``"cpu"`` keeps weights in CPU memory and streams layers to the GPU (diffsynth's VRAM
            management); ``vram_limit`` (GiB) caps what stays resident (default: GPU memory - 2 GiB).
        cfg_batch: run the prompt and negative prompt of classifier-free guidance as one batch (diffsynth's
            ``cfg_merge``: faster, twice the activation memory, the same velocity up to float rounding) instead of
            two forwards. A backbone option, not a strategy field, since it changes no result; the CLI keeps the
            default.
        attention: the DiT's attention kernel, one of ``ATTENTION_CHOICES`` (diffsynth's names; ``auto``: what
            diffsynth's Wan DiT picks); one without a backward serves the calls without gradient and the guidance
            forward runs one that has (:mod:`fastvmt.backbones.attention`). ``ValueError`` when its package is
            missing.
        teacache_model_id: whose TeaCache coefficients the step cache uses (diffsynth's ids, e.g.
            ``"Wan2.1-T2V-1.3B"``); ``None``: the released DiT of this one's size, an error for other sizes. Set
            it only to borrow coefficients on purpose (the tiny test model).
        vae_tile_size, vae_tile_stride: VAE tiling in latent pixels, used when a video is bigger than a tile.
    """

    def __init__(
        self,
        dit: nn.Module,
        vae: nn.Module,
        text_encoder: nn.Module,
        tokenizer: Callable[..., Any],
        *,
        dtype: torch.dtype = torch.bfloat16,
        device: str | torch.device | None = None,
        offload: str | None = None,
        vram_limit: float | None = None,
        cfg_batch: bool = False,
        attention: str = "auto",
        teacache_model_id: str | None = None,
        vae_tile_size: tuple[int, int] = VAE_TILE_SIZE,
        vae_tile_stride: tuple[int, int] = VAE_TILE_STRIDE,
    ):
        from fastvmt.backbones.attention import resolve_attention
        from fastvmt.backbones.kernel_attention import use_kernels
        from fastvmt.backbones.modules import prepare
        from fastvmt.backbones.offload import default_vram_limit, enable_offload

        resolved = resolve_device(device)
        _check_options(dtype, resolved, offload, vram_limit)
        self.attention = resolve_attention(attention)
        if teacache_model_id is not None:
            coefficients_model_id(dit, teacache_model_id)
        self.teacache_model_id = teacache_model_id
        dit = use_kernels(dit, self.attention)
        self._device, self._dtype = resolved, dtype
        self.num_blocks = len(dit.blocks)
        self.heads = dit.blocks[0].self_attn.num_heads
        self.head_dim = dit.dim // self.heads
        self.latent_channels = dit.head.head.out_features // math.prod(dit.patch_size)
        self.patch_size = tuple(dit.patch_size)
        #: Pixels per latent pixel: 8 (Wan2.1's VAE) or 16 (Wan2.2's).
        self.spatial_factor = vae.upsampling_factor
        self.text_dim = dit.text_embedding[0].in_features
        self.cfg_batch = cfg_batch
        self.vae_tile_size, self.vae_tile_stride = vae_tile_size, vae_tile_stride
        self.tokenizer = tokenizer
        self.offload = offload
        if offload is None:
            self.dit, self.vae, self.text_encoder = (prepare(m, dtype).to(resolved) for m in (dit, vae, text_encoder))
        else:
            if vram_limit is None and resolved.type == "cuda":
                vram_limit = default_vram_limit(resolved)
            self.dit, self.vae, self.text_encoder = (
                enable_offload(prepare(m, dtype), resolved, dtype, vram_limit) for m in (dit, vae, text_encoder)
            )
        self._active: nn.Module | None = None
        #: The first-frame conditioning every DiT pass reads (set by conditioning.FirstFrameConditioned backbones).
        self.image_conditioning: Conditioning | None = None

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | Path,
        *,
        dtype: torch.dtype = torch.bfloat16,
        device: str | torch.device | None = None,
        offload: str | None = None,
        vram_limit: float | None = None,
        cfg_batch: bool = False,
        attention: str = "auto",
        teacache_model_id: str | None = None,
        vae_tile_size: tuple[int, int] = VAE_TILE_SIZE,
        vae_tile_stride: tuple[int, int] = VAE_TILE_STRIDE,
    ) -> WanBackbone:
        """Load a Wan2.1 T2V checkpoint directory (layout: :mod:`fastvmt.backbones.checkpoint`).

        Every file is checked before anything is read (one error lists all missing files); the sizes (1.3B,
        14B, tiny) come from the tensors' shapes. ``device`` defaults to CUDA when available; the other
        options are the constructor's.
        """
        from diffsynth.models.wan_video_text_encoder import HuggingfaceTokenizer

        from fastvmt.backbones import architecture as arch
        from fastvmt.backbones import checkpoint, modules
        from fastvmt.backbones.attention import resolve_attention

        resolved = resolve_device(device)
        _check_options(dtype, resolved, offload, vram_limit)
        resolve_attention(attention)  # a missing kernel package fails before the weights are read
        family = cls._family(model_dir)
        if family.backbone() is not cls:  # "wan" loads every family from its files
            return family.backbone().from_pretrained(
                model_dir, dtype=dtype, device=resolved, offload=offload, vram_limit=vram_limit, cfg_batch=cfg_batch,
                attention=attention, teacache_model_id=teacache_model_id,
                vae_tile_size=vae_tile_size, vae_tile_stride=vae_tile_stride,
            )
        files = family.locate(model_dir)
        stored = arch.check_stored_config(checkpoint.read_config(files.config), files.config)
        # Straight to the compute device, unless weights are to live in CPU memory.
        load_device = torch.device("cpu") if offload else resolved

        def shapes(state: dict[str, Tensor]) -> dict[str, tuple[int, ...]]:
            return {name: tuple(t.shape) for name, t in state.items()}

        log.info("loading Wan DiT from %s", ", ".join(p.name for p in files.dit))
        dit_state = modules.dit_state_dict(checkpoint.read_state_dict(files.dit, dtype, load_device))
        dit_config = arch.infer_dit_config(shapes(dit_state), stored)
        if dit_config.has_image_input != family.dit_image_input:
            raise ValueError(
                f"{files.root} holds a Wan DiT {'with' if dit_config.has_image_input else 'without'} image input, "
                f"not the {family.title} DiT expected ({', '.join(family.releases)})"
            )
        text_state = checkpoint.read_state_dict(files.text_encoder, dtype, load_device)
        text_config = arch.infer_text_encoder_config(shapes(text_state))
        vae_state = modules.vae_state_dict(checkpoint.read_state_dict(files.vae, dtype, load_device))
        vae_config = arch.infer_vae_config(shapes(vae_state))
        arch.check_compatible(dit_config, text_config, vae_config)
        log.info("Wan DiT: %s", dit_config)

        tokenizer = HuggingfaceTokenizer(  # never code from the checkpoint, never the network
            name=str(files.tokenizer), seq_len=dit_config.text_len, clean="whitespace",
            trust_remote_code=False, local_files_only=True,
        )
        if len(tokenizer.tokenizer) > text_config.vocab:
            raise ValueError(
                f"the tokenizer in {files.tokenizer} has {len(tokenizer.tokenizer)} tokens but the text encoder "
                f"embeds only {text_config.vocab}: tokenizer and text encoder do not belong together"
            )
        dit = modules.build_dit(dit_config)
        modules.load_weights(dit, dit_state, "DiT")
        text_encoder = modules.build_text_encoder(text_config)
        modules.load_weights(text_encoder, text_state, "text encoder")
        vae = modules.build_vae(vae_config)
        modules.load_weights(vae.model, vae_state, "VAE")
        return cls(
            dit, vae, text_encoder, tokenizer, **cls._load_family_networks(files, dtype, load_device),
            dtype=dtype, device=resolved, offload=offload, vram_limit=vram_limit, cfg_batch=cfg_batch,
            attention=attention, teacache_model_id=teacache_model_id,
            vae_tile_size=vae_tile_size, vae_tile_stride=vae_tile_stride,
        )

    @classmethod
    def _family(cls, model_dir: str | Path) -> WanFamily:
        """The family :meth:`from_pretrained` loads: the directory's (:func:`.families.detect_family`); a family's
        own backbone class returns its family."""
        from fastvmt.backbones.families import detect_family

        return detect_family(model_dir)

    @classmethod
    def _load_family_networks(cls, files: CheckpointFiles, dtype: torch.dtype, device: torch.device) -> dict[str, Any]:
        """A family's networks beyond the DiT, VAE and text encoder, as constructor arguments (none here)."""
        return {}

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        return self._dtype

    # -- shapes ------------------------------------------------------------------------------------------

    def geometry(self, num_frames: int, height: int, width: int) -> VideoGeometry:
        """Latent shape ``(1, C, F, H/s, W/s)`` and token grid ``(F, H/2s, W/2s)`` (``s``: the VAE's
        ``spatial_factor``, 8 or 16); ``ValueError`` naming the nearest valid values unless frames are ``4k+1`` and
        sizes multiples of ``2s``."""
        return video_geometry(
            num_frames, height, width, latent_channels=self.latent_channels, patch_size=self.patch_size,
            spatial_factor=self.spatial_factor,
        )

    def _check_latents(self, latents: Tensor) -> tuple[int, int, int]:
        """The token grid of ``latents``; ``ValueError`` unless they are ``(1, C, F, H8, W8)`` with even H8, W8."""
        pf, ph, pw = self.patch_size
        if latents.ndim != 5 or latents.shape[0] != 1 or latents.shape[1] != self.latent_channels:
            raise ValueError(
                f"latents must be (1, {self.latent_channels}, F, H/8, W/8), got {tuple(latents.shape)}"
            )
        f, h8, w8 = latents.shape[2:]
        if f % pf or h8 % ph or w8 % pw:
            raise ValueError(
                f"latent size {f}x{h8}x{w8} does not divide into DiT patches {pf}x{ph}x{pw}: "
                f"use videos with {TEMPORAL_FACTOR}k+1 frames and sizes that are multiples of "
                f"{self.spatial_factor * ph}x{self.spatial_factor * pw} pixels (height x width)"
            )
        return f // pf, h8 // ph, w8 // pw

    def _context(self, context: Tensor, name: str) -> Tensor:
        """``context`` on the backbone's device and dtype; ``ValueError`` unless it is ``(1, L, text_dim)``."""
        if context.ndim != 3 or context.shape[0] != 1 or context.shape[2] != self.text_dim:
            raise ValueError(
                f"{name} must be (1, tokens, {self.text_dim}) as encode_prompt returns, got {tuple(context.shape)}"
            )
        return context.to(device=self._device, dtype=self._dtype)

    def _timestep(self, timestep: float) -> Tensor:
        if isinstance(timestep, bool) or not isinstance(timestep, (int, float)) or not 0 <= timestep <= 1000:
            raise ValueError(f"timestep is sigma * 1000 and must be a number in [0, 1000], got {timestep!r}")
        return torch.tensor([float(timestep)], dtype=torch.float32, device=self._device)

    def _use(self, module: nn.Module) -> None:
        """With offloading, bring ``module`` in and the other networks out."""
        if self.offload is not None and self._active is not module:
            from fastvmt.backbones.offload import activate

            activate((self.dit, self.vae, self.text_encoder), module)
            self._active = module

    def _vae_tiled(self, h8: int, w8: int, tiled: bool | None) -> bool:
        return tiled if tiled is not None else (h8 > self.vae_tile_size[0] or w8 > self.vae_tile_size[1])

    # -- VAE and text ------------------------------------------------------------------------------------

    def encode_video(
        self, video: Float[Tensor, "t 3 h w"], *, tiled: bool | None = None
    ) -> Float[Tensor, "1 c f h8 w8"]:
        """VAE latents of frames in [-1, 1]; ``tiled=None`` tiles when the video is bigger than one tile."""
        if video.ndim != 4 or video.shape[1] != 3:
            raise ValueError(f"video must be (frames, 3, height, width) in [-1, 1], got {tuple(video.shape)}")
        _, _, _, h8, w8 = self.geometry(video.shape[0], video.shape[2], video.shape[3]).latent_shape
        self._use(self.vae)
        with torch.no_grad():
            latents = self.vae.encode(
                [video.permute(1, 0, 2, 3).to(self._dtype)],
                device=self._device,
                tiled=self._vae_tiled(h8, w8, tiled),
                tile_size=self.vae_tile_size,
                tile_stride=self.vae_tile_stride,
            )
        return latents.to(device=self._device, dtype=self._dtype)

    def decode(self, latents: Float[Tensor, "1 c f h8 w8"], *, tiled: bool | None = None) -> Float[Tensor, "t 3 h w"]:
        """Frames in [-1, 1] (float32, on the CPU) of VAE latents; ``tiled`` as in :meth:`encode_video`."""
        self._check_latents(latents)
        self._use(self.vae)
        with torch.no_grad():
            video = self.vae.decode(
                latents.detach().to(self._dtype),
                device=self._device,
                tiled=self._vae_tiled(*latents.shape[3:], tiled),
                tile_size=self.vae_tile_size,
                tile_stride=self.vae_tile_stride,
            )
        return video[0].permute(1, 0, 2, 3).float().cpu()

    def encode_prompt(self, prompt: str) -> Float[Tensor, "1 l d"]:
        """umT5 features of ``prompt``, ``(1, text_len, text_dim)``, zero after the prompt's last token."""
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
        self._use(self.text_encoder)
        ids, mask = self.tokenizer(prompt, return_mask=True, add_special_tokens=True)
        ids, mask = ids.to(self._device), mask.to(self._device)
        with torch.no_grad():
            context = self.text_encoder(ids, mask)
        context[:, int(mask.sum()) :] = 0
        return context.to(self._dtype)

    # -- DiT ---------------------------------------------------------------------------------------------

    def velocity(
        self,
        latents: Float[Tensor, "1 c f h8 w8"],
        timestep: float,
        context: Float[Tensor, "1 l d"],
        negative_context: Float[Tensor, "1 l d"] | None = None,
        cfg_scale: float = 1.0,
        cache: StepCache | None = None,
    ) -> Float[Tensor, "1 c f h8 w8"]:
        """Flow-matching velocity; with ``cfg_scale != 1``: ``v_neg + cfg_scale * (v_pos - v_neg)``. ``cache`` (from
        :meth:`step_cache`) may reuse the blocks' last residual, per CFG branch."""
        from fastvmt.backbones.forward import dit_forward

        self._check_latents(latents)
        context = self._context(context, "context")
        if not math.isfinite(cfg_scale):
            raise ValueError(f"cfg_scale must be finite, got {cfg_scale}")
        if uses_cfg(cfg_scale):
            if negative_context is None:
                raise ValueError(
                    f"cfg_scale={cfg_scale} needs a negative_context (e.g. encode_prompt(negative_prompt))"
                )
            negative_context = self._context(negative_context, "negative_context")
        t = self._timestep(timestep)
        x = latents.to(device=self._device, dtype=self._dtype)
        self._use(self.dit)
        image = self.image_conditioning

        def branch(name: str) -> dict[str, BranchCache]:
            return {} if cache is None else {"cache": cache.branch(name)}

        if not uses_cfg(cfg_scale):
            return dit_forward(self.dit, x, t, context, image=image, **branch("positive"))
        if self.cfg_batch and context.shape == negative_context.shape:
            both = torch.cat([context, negative_context])
            positive, negative = dit_forward(self.dit, x, t, both, image=image, **branch("merged")).chunk(2)
        else:
            positive = dit_forward(self.dit, x, t, context, image=image, **branch("positive"))
            negative = dit_forward(self.dit, x, t, negative_context, image=image, **branch("negative"))
        return negative + cfg_scale * (positive - negative)

    def step_cache(self, threshold: float, num_steps: int) -> StepCache:
        """A fresh step cache (diffsynth's TeaCache at ``threshold``) for ``num_steps`` velocity calls;
        ``ValueError`` for a DiT without TeaCache coefficients (see ``teacache_model_id``)."""
        return StepCache(threshold, num_steps, coefficients_model_id(self.dit, self.teacache_model_id))

    def features(
        self,
        latents: Float[Tensor, "1 c f h8 w8"],
        timestep: float,
        context: Float[Tensor, "1 l d"],
        *,
        block: int,
        checkpointing: bool = False,
    ) -> AttentionFeatures:
        """Self-attention q and k of ``block`` per head, ``(F, H, W, heads, head_dim)``, after q/k RMSNorm and
        3D RoPE. The forward stops there (blocks ``0..block-1`` and ``block``'s projections run); the result
        is differentiable w.r.t. ``latents``. ``checkpointing``: blocks ``0..block-1`` are recomputed in the
        backward instead of keeping their activations (:func:`~fastvmt.backbones.forward.capture_qk`)."""
        from fastvmt.backbones.forward import capture_qk

        if isinstance(block, bool) or not isinstance(block, int) or not 0 <= block < self.num_blocks:
            raise ValueError(f"block must be an int in [0, {self.num_blocks - 1}] for this DiT, got {block!r}")
        f, h, w = self._check_latents(latents)
        context = self._context(context, "context")
        t = self._timestep(timestep)
        self._use(self.dit)
        if not isinstance(checkpointing, bool):
            raise ValueError(f"checkpointing must be True or False, got {checkpointing!r}")
        latents = latents.to(device=self._device, dtype=self._dtype)
        q, k = capture_qk(self.dit, latents, t, context, block, checkpointing=checkpointing,
                          image=self.image_conditioning)
        shape = (f, h, w, self.heads, self.head_dim)
        return AttentionFeatures(q=q.reshape(shape), k=k.reshape(shape))
