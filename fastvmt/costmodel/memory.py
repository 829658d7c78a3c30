"""GPU memory model of a guided generation on Wan2.1 (docs/algorithm.md#memory; ``fastvmt bench cost --memory``).

The peak is the larger of two phases, each on top of the weights resident on the GPU:

- **guidance** (a guided step's gradient): the activations autograd keeps for the backward from block ``b``'s
  q/k to the latents (:func:`guidance_activation_bytes`), the backward's working set, the q/k features, the AMF
  op's tensors (:func:`amf_bytes`), the float32 master latent with its two Adam moments;
- **denoising** (a velocity without gradient): one DiT block's transient tensors at batch 1, or 2 with merged CFG
  (:func:`velocity_working_bytes`).

Assumptions (what the numbers mean):

- weights: the parameters of diffsynth's very networks (counted on the meta device, so one source with loading) at
  the compute dtype, all three resident unless the text encoder is offloaded after encoding (``--offload`` does
  that, and streams the others too; the model keeps the DiT and VAE resident);
- activations: what autograd saves in diffsynth's blocks with frozen weights (a linear layer keeps only its
  weight, so nothing), counted op by op: LayerNorm input and statistics, RMSNorm's float32 input and inverse
  RMS, attention q/k/v/output and log-sum-exp (flash or memory-efficient SDPA, never the ``S x S`` weights),
  GELU input, the shared float64 RoPE table; with checkpointing only the blocks' inputs (and block ``b``'s part)
  are kept. Validated against torch's own count of the real blocks (:mod:`fastvmt.costmodel.saved`);
- backward working set: not measured (no GPU here): with checkpointing, one block's activations being recomputed;
  always, gradient buffers of two ``tokens x ffn`` and four ``tokens x dim`` tensors at the compute dtype;
- AMF: the torch backend's bounds (:mod:`fastvmt.backends.torch_backend`): float32 copies of q and k at the
  extractor's width, the probabilities kept for the backward when they fit its ``SAVE_BYTES`` (else recomputed),
  one chunk of temporaries (``CHUNK_BYTES``); the triton backend keeps less, so this is an upper bound there;
- velocity working set: per block, the residual stream, the FFN hidden layer and the attention's q/k/v/output,
  never the ``S x S`` weights (flash attention);
- not modelled: the VAE decode (it runs after the DiT, tiled), the CUDA context and allocator fragmentation, which
  :data:`CUDA_RESERVE_BYTES` stands for when a GPU is picked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

from fastvmt.backbones.architecture import RELEASED_TEXT_ENCODER, DiTConfig, TextEncoderConfig, VAEConfig
from fastvmt.backends.torch_backend.backend import CHUNK_BYTES, SAVE_BYTES
from fastvmt.costmodel.recipes import GuidanceRecipe
from fastvmt.interfaces import PREDICTION, TokenGrid
from fastvmt.ops import frame_pairs
from fastvmt.strategies.extractors import DenseAMFExtractor, WindowedAMFExtractor

__all__ = [
    "COMMON_GPUS_GB",
    "CUDA_RESERVE_BYTES",
    "DTYPE_BYTES",
    "MemoryEstimate",
    "MemoryOptions",
    "amf_bytes",
    "block_activation_bytes",
    "guidance_activation_bytes",
    "run_memory",
    "smallest_gpu",
    "velocity_working_bytes",
    "weight_bytes",
]

#: Common GPU memory sizes in GB (1e9 bytes, as sold; a "24 GB" card with 24 GiB has a little more).
COMMON_GPUS_GB = (24, 40, 48, 80, 141)
#: What the CUDA context, cuBLAS workspaces and allocator fragmentation take beyond the tensors (an assumption).
CUDA_RESERVE_BYTES = 1 << 30
#: Bytes per element of the compute dtypes a backbone runs in.
DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}
_FLOAT32, _FLOAT64_COMPLEX = 4, 16
#: Float32 copies of the latent an optimised guided step holds: the master latent, its gradient, Adam's moments.
_MASTER_COPIES = 4


@dataclass(frozen=True)
class MemoryOptions:
    """What changes the memory of a run but not its result."""

    dtype: str = "bfloat16"
    checkpointing: bool = False
    text_encoder_offloaded: bool = False
    cfg_batch: bool = False

    def __post_init__(self) -> None:
        if self.dtype not in DTYPE_BYTES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPE_BYTES)}, got {self.dtype!r}")

    @property
    def itemsize(self) -> int:
        return DTYPE_BYTES[self.dtype]


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per part of the weights resident and of each phase's own tensors."""

    weights: dict[str, int]
    guidance: dict[str, int]
    denoising: dict[str, int]

    @property
    def guidance_peak(self) -> int:
        return sum(self.weights.values()) + sum(self.guidance.values())

    @property
    def denoising_peak(self) -> int:
        return sum(self.weights.values()) + sum(self.denoising.values())

    @property
    def peak(self) -> int:
        return max(self.guidance_peak, self.denoising_peak)


@cache
def _parameters(config: DiTConfig | TextEncoderConfig | VAEConfig) -> int:
    """Parameters of diffsynth's network of ``config``, built on the meta device (no memory, no weights)."""
    from fastvmt.backbones import modules

    build = {DiTConfig: modules.build_dit, TextEncoderConfig: modules.build_text_encoder, VAEConfig: modules.build_vae}
    return sum(p.numel() for p in build[type(config)](config).parameters())


def weight_bytes(config: DiTConfig, options: MemoryOptions, text_encoder: TextEncoderConfig = RELEASED_TEXT_ENCODER,
                 vae: VAEConfig = VAEConfig()) -> dict[str, int]:
    """Weights resident during the DiT phases, per network, at the compute dtype."""
    weights = {"DiT": _parameters(config), "VAE": _parameters(vae)}
    if not options.text_encoder_offloaded:
        weights["text encoder"] = _parameters(text_encoder)
    return {name: count * options.itemsize for name, count in weights.items()}


def _layer_norm(tokens: int, dim: int, itemsize: int) -> int:
    """LayerNorm keeps its input and float32 mean and inverse deviation per token."""
    return tokens * dim * itemsize + 2 * tokens * _FLOAT32


def _rms_norm(tokens: int, dim: int) -> int:
    """diffsynth's RMSNorm keeps its input upcast to float32 and the float32 inverse RMS per token."""
    return tokens * dim * _FLOAT32 + tokens * _FLOAT32


def _attention(queries: int, keys: int, config: DiTConfig, itemsize: int) -> int:
    """Fused attention keeps q, k, v, its output and a float32 log-sum-exp per head and query."""
    return (2 * queries + 2 * keys) * config.dim * itemsize + config.num_heads * queries * _FLOAT32


def block_activation_bytes(config: DiTConfig, tokens: int, itemsize: int) -> int:
    """What autograd keeps of one whole DiT block for the gradient w.r.t. its input (frozen weights)."""
    n, d = tokens, config.dim
    self_attention = _layer_norm(n, d, itemsize) + 2 * _rms_norm(n, d) + _attention(n, n, config, itemsize)
    cross_attention = _layer_norm(n, d, itemsize) + _rms_norm(n, d) + _attention(n, config.text_len, config, itemsize)
    feed_forward = _layer_norm(n, d, itemsize) + n * config.ffn_dim * itemsize
    return self_attention + cross_attention + feed_forward


def _until_qk_bytes(config: DiTConfig, tokens: int, itemsize: int) -> int:
    """What autograd keeps of the captured block: norm1 and the q/k RMSNorms (the attention never runs)."""
    return _layer_norm(tokens, config.dim, itemsize) + 2 * _rms_norm(tokens, config.dim)


def _shared_bytes(config: DiTConfig, grid: TokenGrid, itemsize: int) -> int:
    """The patch embedding's input (the latents) and diffsynth's float64 RoPE table, kept once for all blocks."""
    latents = config.in_dim * grid.tokens * math.prod(config.patch_size) * itemsize
    return latents + grid.tokens * (config.head_dim // 2) * _FLOAT64_COMPLEX


def guidance_activation_bytes(config: DiTConfig, grid: TokenGrid, block: int, itemsize: int,
                              checkpointing: bool) -> int:
    """Activations kept for the guidance backward from block ``block``'s q/k to the latents: blocks
    ``0..block-1`` whole (with checkpointing: their inputs only), then the captured block up to its q/k."""
    n = grid.tokens
    per_block = n * config.dim * itemsize if checkpointing else block_activation_bytes(config, n, itemsize)
    return _shared_bytes(config, grid, itemsize) + block * per_block + _until_qk_bytes(config, n, itemsize)


def _backward_working_bytes(config: DiTConfig, grid: TokenGrid, itemsize: int, checkpointing: bool) -> int:
    """Gradient buffers of the backward, plus one block's activations while it is recomputed (checkpointing)."""
    n = grid.tokens
    buffers = (2 * config.ffn_dim + 4 * config.dim) * n * itemsize
    return buffers + (block_activation_bytes(config, n, itemsize) if checkpointing else 0)


def amf_bytes(extractor: object, config: DiTConfig, grid: TokenGrid) -> int:
    """The AMF op's tensors in a guided gradient on the torch backend (float32): q/k copies at the extractor's
    width, the output positions, the probabilities when they fit ``SAVE_BYTES``, one chunk of temporaries."""
    if not isinstance(extractor, (DenseAMFExtractor, WindowedAMFExtractor)):
        raise ValueError(
            f"the memory model counts the dense and windowed AMF extractors, not {type(extractor).__name__}"
        )
    s = grid.tokens_per_frame
    width = config.head_dim if extractor.heads == "mean_qk" else config.dim
    pairs = len(frame_pairs(grid.frames, extractor.sf, extractor.pairs))
    if isinstance(extractor, DenseAMFExtractor):
        keys = s
    else:
        keys = min(extractor.window, grid.height) * min(extractor.window, grid.width)
    probabilities = pairs * s * keys * _FLOAT32
    kept = probabilities if probabilities <= SAVE_BYTES else 0
    return 2 * grid.tokens * width * _FLOAT32 + pairs * s * 2 * _FLOAT32 + kept + CHUNK_BYTES


def velocity_working_bytes(config: DiTConfig, grid: TokenGrid, itemsize: int, batch: int) -> int:
    """Transient tensors of one block of a velocity forward without gradient, for ``batch`` prompts: the residual
    stream and its normed copy, q/k/v and the attention output, the FFN hidden layer and the head's output."""
    n = grid.tokens
    return batch * n * (6 * config.dim + config.ffn_dim) * itemsize


def run_memory(recipe: GuidanceRecipe, config: DiTConfig, grid: TokenGrid, options: MemoryOptions) -> MemoryEstimate:
    """Memory of one guided generation of ``grid`` with ``recipe`` on ``config`` (``options.checkpointing``
    replaces the strategy's ``guidance_checkpointing``)."""
    size = options.itemsize
    weights = weight_bytes(config, options)
    latent = config.in_dim * grid.tokens * math.prod(config.patch_size)
    cfg_batch = 2 if options.cfg_batch and recipe.velocity_passes == 2 else 1
    denoising = {"velocity forward": velocity_working_bytes(config, grid, size, cfg_batch)}
    guidance = {"latents": _MASTER_COPIES * latent * _FLOAT32}
    extractor = recipe.amf_extractor
    if extractor is None:  # latent predictions only: velocity forwards without gradient
        guidance["velocity forward"] = velocity_working_bytes(config, grid, size, cfg_batch)
        return MemoryEstimate(weights, guidance, denoising)
    block = recipe.strategy.block
    guidance["activations"] = guidance_activation_bytes(config, grid, block, size, options.checkpointing)
    guidance["backward"] = _backward_working_bytes(config, grid, size, options.checkpointing)
    guidance["q/k features"] = 2 * grid.tokens * config.dim * size
    guidance["AMF"] = amf_bytes(extractor, config, grid)
    if PREDICTION in recipe.reads:  # a combined extractor also reads the velocity while the features' graph lives
        guidance["velocity forward"] = velocity_working_bytes(config, grid, size, cfg_batch)
    return MemoryEstimate(weights, guidance, denoising)


def smallest_gpu(peak: int) -> int | None:
    """The smallest of :data:`COMMON_GPUS_GB` that holds ``peak`` bytes plus :data:`CUDA_RESERVE_BYTES`."""
    return next((gb for gb in COMMON_GPUS_GB if peak + CUDA_RESERVE_BYTES <= gb * 10**9), None)
