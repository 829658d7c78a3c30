"""FLOPs of one Wan2.1 DiT pass (diffsynth's ``WanModel`` run by ``model_fn_wan_video``), by formula.

Counted like ``torch.utils.flop_counter.FlopCounterMode``: matrix products only (linear layers, the patch
convolution, attention as ``2 * m * n * k`` per product); norms, RoPE, modulation and other elementwise work are
not counted. With ``L`` video tokens, ``C`` text tokens, width ``d``, FFN width ``f``, a block's forward is::

    self-attention  q, k, v, o projections  4 * 2*L*d*d      scores and weighted sum  2 * 2*L*L*d
    cross-attention q, o projections        2 * 2*L*d*d      k, v of the text         2 * 2*C*d*d
                    scores and weighted sum 2 * 2*L*C*d
    feed-forward                            2 * 2*L*d*f

The guidance backward takes gradients w.r.t. the latents only (frozen weights): each linear layer on the token
path costs its forward again (input gradient only), fused attention costs 5 products (scores recomputed,
dS, dV, dQ, dK: 2.5x its forward), and nothing flows into the text or timestep embeddings.

The sizes are a :class:`fastvmt.backbones.architecture.DiTConfig` (the released ones: ``RELEASED_DITS``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fastvmt.backbones.architecture import DiTConfig
from fastvmt.interfaces import TokenGrid

__all__ = ["Depth", "backward_flops", "forward_flops"]


@dataclass(frozen=True)
class Depth:
    """How far a pass runs: ``blocks`` full DiT blocks, then either the output head or the q/k/v projections of
    the next block (a forward pre-hook on its attention stops the pass there).
    """

    blocks: int
    head: bool = False
    stop_at_qkv: bool = False

    def __post_init__(self) -> None:
        if self.blocks < 0:
            raise ValueError(f"blocks must be >= 0, got {self.blocks}")
        if self.head and self.stop_at_qkv:
            raise ValueError("a pass ends either with the head or at the next block's q/k/v, not both")

    @classmethod
    def full(cls, config: DiTConfig) -> Depth:
        """Every block and the head: a denoising velocity."""
        return cls(config.num_layers, head=True)

    @classmethod
    def until_qk(cls, block: int) -> Depth:
        """Blocks ``0..block-1``, then ``block``'s q/k/v projections: the early exit at a block's features."""
        return cls(block, stop_at_qkv=True)

    @classmethod
    def through_blocks(cls, blocks: int) -> Depth:
        """The first ``blocks`` blocks, no head (the official release's guidance forward)."""
        return cls(blocks)

    def check(self, config: DiTConfig) -> None:
        limit = config.num_layers - 1 if self.stop_at_qkv else config.num_layers
        if self.blocks > limit:
            raise ValueError(f"the DiT has {config.num_layers} blocks; {self} runs past them")


def _linear(tokens: int, fan_in: int, fan_out: int) -> int:
    return 2 * tokens * fan_in * fan_out


def _attention(queries: int, keys: int, width: int) -> int:
    return 2 * 2 * queries * keys * width


def _block_forward(config: DiTConfig, tokens: int) -> int:
    d, c = config.dim, config.text_len
    self_attention = 4 * _linear(tokens, d, d) + _attention(tokens, tokens, d)
    cross_attention = 2 * _linear(tokens, d, d) + 2 * _linear(c, d, d) + _attention(tokens, c, d)
    return self_attention + cross_attention + 2 * _linear(tokens, d, config.ffn_dim)


def _block_backward(config: DiTConfig, tokens: int) -> int:
    d, c = config.dim, config.text_len
    self_attention = 4 * _linear(tokens, d, d) + 5 * _attention(tokens, tokens, d) // 2
    cross_attention = 2 * _linear(tokens, d, d) + 5 * _attention(tokens, c, d) // 2
    return self_attention + cross_attention + 2 * _linear(tokens, d, config.ffn_dim)


def _patch_embedding(config: DiTConfig, tokens: int) -> int:
    return _linear(tokens, config.in_dim * math.prod(config.patch_size), config.dim)


def _head(config: DiTConfig, tokens: int) -> int:
    return _linear(tokens, config.dim, config.out_dim * math.prod(config.patch_size))


def forward_flops(config: DiTConfig, grid: TokenGrid, depth: Depth) -> int:
    """FLOPs of one forward pass of batch 1 up to ``depth`` (timestep, text and patch embeddings included)."""
    depth.check(config)
    d, n = config.dim, grid.tokens
    embeddings = (
        _linear(1, config.freq_dim, d) + _linear(1, d, d) + _linear(1, d, 6 * d)  # timestep MLP + modulation
        + _linear(config.text_len, config.text_dim, d) + _linear(config.text_len, d, d)  # text MLP
        + _patch_embedding(config, n)
    )
    total = embeddings + depth.blocks * _block_forward(config, n)
    if depth.head:
        total += _head(config, n)
    if depth.stop_at_qkv:
        total += 3 * _linear(n, d, d)
    return total


def backward_flops(config: DiTConfig, grid: TokenGrid, depth: Depth) -> int:
    """FLOPs of the gradient w.r.t. the latents of a scalar of ``depth``'s output (frozen weights).

    For ``Depth.until_qk(b)`` the scalar depends on block ``b``'s q and k (not v): their projections, blocks
    ``0..b-1`` and the patch embedding are differentiated.
    """
    depth.check(config)
    d, n = config.dim, grid.tokens
    total = _patch_embedding(config, n) + depth.blocks * _block_backward(config, n)
    if depth.head:
        total += _head(config, n)
    if depth.stop_at_qkv:
        total += 2 * _linear(n, d, d)
    return total
