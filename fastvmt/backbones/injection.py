"""What guided steps change in the Wan DiT's self-attention besides the latent (docs/algorithm.md#motion-embeddings):
an angle offset on the 3D RoPE rotation of every block's q and k, and keys and values injected into chosen blocks.

Both are forward pre-hooks on diffsynth's modules, so every forward of the DiT inside the context (feature captures,
velocities, both classifier-free guidance branches, batched or not) sees them, and gradients reach the offsets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor, nn

__all__ = ["KeyValues", "attention_dit", "inject_kv", "record_kv", "rope_offset"]

#: Keys and values of the video tokens of one block's self-attention: ``{block: (k, v)}``, each ``(1, s, dim)``.
KeyValues = dict[int, tuple[Tensor, Tensor]]


def attention_dit(backbone: Any, what: str) -> nn.Module:
    """The Wan DiT of ``backbone`` (diffsynth's ``WanModel``: ``blocks`` and the RoPE tables ``freqs``);
    ``ValueError`` naming ``what`` needs it for a backbone without one (e.g. the weight-free patch backbone)."""
    dit = getattr(backbone, "dit", None)
    if dit is None or not hasattr(dit, "freqs") or not hasattr(dit, "blocks"):
        raise ValueError(
            f"{what} needs a DiT with rotary position embeddings and self-attention (the Wan backbone); "
            f"{type(backbone).__name__} has none"
        )
    return dit


def _hooked(modules: Sequence[nn.Module], hook) -> ExitStack:
    stack = ExitStack()
    for module in modules:
        stack.callback(module.register_forward_pre_hook(hook, with_kwargs=True).remove)
    return stack


@contextmanager
def rope_offset(dit: nn.Module, angles: Float[Tensor, "s d2"] | None) -> Iterator[None]:
    """Every block's RoPE rotation of token ``s`` and frequency ``i`` turned by ``angles[s, i]`` radians (the
    rotation stays unit: ``freqs * exp(i * angles)``); differentiable w.r.t. ``angles``. ``None``: no change."""
    if angles is None:
        yield
        return

    # One rotation for every block (the graph to ``angles`` is shared); a plain closure, as in
    # fastvmt.backbones.forward.capture_qk, since it survives diffsynth's copies of the blocks.
    rotation = torch.polar(torch.ones_like(angles, dtype=torch.float64), angles.to(torch.float64)).unsqueeze(1)

    def hook(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        if len(args) < 4:
            raise RuntimeError("the DiT block was called without its RoPE table as 4th positional argument")
        freqs = args[3]
        if freqs.shape[0] != rotation.shape[0] or freqs.shape[-1] != rotation.shape[-1]:
            raise ValueError(f"RoPE angle offsets of {tuple(angles.shape)} do not fit the DiT's RoPE table "
                             f"{tuple(freqs.shape)} (tokens, 1, head_dim/2)")
        return (*args[:3], freqs * rotation.to(freqs.device), *args[4:]), kwargs

    with _hooked(list(dit.blocks), hook):
        yield


def record_kv(dit: nn.Module, blocks: Sequence[int], read: Any) -> KeyValues:
    """The self-attention keys (after RoPE) and values the attention call of each of ``blocks`` receives while
    ``read()`` runs a forward of the DiT (e.g. a feature capture that stops at the last of the blocks)."""
    recorded: KeyValues = {}

    def recorder(block: int):
        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            recorded[block] = (args[1].detach(), args[2].detach())

        return hook

    with ExitStack() as stack:
        for block in blocks:
            attention = dit.blocks[block].self_attn.attn
            stack.callback(attention.register_forward_pre_hook(recorder(block), with_kwargs=True).remove)
        read()
    missing = sorted(set(blocks) - set(recorded))
    if missing:
        raise RuntimeError(f"the reference forward did not reach the self-attention of blocks {missing}")
    return recorded


@contextmanager
def inject_kv(dit: nn.Module, key_values: KeyValues | None,
              on_inject: Callable[[], None] | None = None) -> Iterator[None]:
    """The self-attention of each block of ``key_values`` attends to those keys and values instead of its own
    (the same for every batch entry: both classifier-free guidance branches); ``on_inject()`` is called at every
    attention call so changed. ``None``: no change."""
    if not key_values:
        yield
        return

    def injector(key: Tensor, value: Tensor):
        def hook(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
            q, k, v = args[:3]
            if key.shape[1:] != k.shape[1:]:
                raise ValueError(f"injected keys {tuple(key.shape)} do not fit the attention's {tuple(k.shape)}")
            batch = q.shape[0]
            if on_inject is not None:
                on_inject()
            return (q, key.expand(batch, -1, -1).to(k.dtype), value.expand(batch, -1, -1).to(v.dtype),
                    *args[3:]), kwargs

        return hook

    with ExitStack() as stack:
        for block, (key, value) in key_values.items():
            attention = dit.blocks[block].self_attn.attn
            stack.callback(attention.register_forward_pre_hook(injector(key, value), with_kwargs=True).remove)
        yield
