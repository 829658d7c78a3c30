"""torch's own count of the activations a guidance backward keeps (docs/algorithm.md#memory): the check of
:func:`fastvmt.costmodel.memory.guidance_activation_bytes`.

:func:`saved_activation_bytes` runs the early-exit forward to a block's q/k under
``torch.autograd.graph.saved_tensors_hooks`` and sums the bytes of every storage autograd saves (each once,
the weights left out), plus the inputs that checkpointed blocks hold for their recomputation (autograd does not
see those). :func:`meta_guidance_activations` does it at real sizes without allocating: diffsynth's very
``WanModel`` on the meta device. There ``scaled_dot_product_attention`` would take its math path, which keeps the
``S x S`` attention weights; a GPU runs the flash kernel, which keeps q, k, v, the output and the log-sum-exp, so
:func:`flash_attention_on_meta` swaps diffsynth's attention function for torch's flash kernel (its CPU variant,
which has a meta implementation and saves the same tensors) while the count runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from einops import rearrange
from torch import Tensor

from fastvmt.backbones.architecture import DiTConfig
from fastvmt.interfaces import TokenGrid

__all__ = ["flash_attention_on_meta", "meta_guidance_activations", "saved_activation_bytes"]


def _flash_attention(q: Tensor, k: Tensor, v: Tensor, num_heads: int, compatibility_mode: bool = False) -> Tensor:
    """diffsynth's ``flash_attention`` signature on torch's fused CPU flash kernel: ``(b, s, n*d)`` in and out."""
    q, k, v = (rearrange(t, "b s (n d) -> b n s d", n=num_heads) for t in (q, k, v))
    out = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v)[0]
    return rearrange(out, "b n s d -> b s (n d)", n=num_heads)


@contextlib.contextmanager
def flash_attention_on_meta() -> Iterator[None]:
    """diffsynth's Wan attention runs torch's flash kernel inside the block (restored on exit)."""
    from diffsynth.models import wan_video_dit

    original = wan_video_dit.flash_attention
    wan_video_dit.flash_attention = _flash_attention
    try:
        yield
    finally:
        wan_video_dit.flash_attention = original


def _storage_key(tensor: Tensor) -> int:
    return tensor.untyped_storage()._cdata


def saved_activation_bytes(
    dit: torch.nn.Module, latents: Tensor, timestep: Tensor, context: Tensor, block: int, *, checkpointing: bool
) -> int:
    """Bytes autograd keeps for the backward of :func:`~fastvmt.backbones.forward.capture_qk` (latents that require
    grad): saved tensors plus the inputs checkpointed blocks hold, each storage once, the DiT's weights excluded."""
    from fastvmt.backbones.forward import capture_qk

    weights = {_storage_key(p) for p in dit.parameters()}
    kept: dict[int, int] = {}

    def keep(tensor: Tensor) -> None:
        key = _storage_key(tensor)
        if key not in weights:
            kept[key] = tensor.untyped_storage().nbytes()

    def pack(tensor: Tensor) -> Tensor:
        keep(tensor)
        return tensor

    def block_inputs(module: torch.nn.Module, args: tuple) -> None:
        for arg in args:
            if isinstance(arg, Tensor):
                keep(arg)

    handles = [b.register_forward_pre_hook(block_inputs) for b in dit.blocks[:block]] if checkpointing else []
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            capture_qk(dit, latents, timestep, context, block, checkpointing=checkpointing)
    finally:
        for handle in handles:
            handle.remove()
    return sum(kept.values())


def meta_guidance_activations(config: DiTConfig, grid: TokenGrid, block: int, *, checkpointing: bool,
                              dtype: torch.dtype = torch.bfloat16) -> int:
    """:func:`saved_activation_bytes` of diffsynth's ``WanModel`` of ``config`` on the meta device for a latent of
    ``grid`` (with the flash kernel, :func:`flash_attention_on_meta`): nothing is allocated or computed."""
    from fastvmt.backbones import modules

    dit = modules.prepare(modules.build_dit(config), dtype)  # parameters on the meta device
    pf, ph, pw = config.patch_size
    shape = (1, config.in_dim, grid.frames * pf, grid.height * ph, grid.width * pw)
    latents = torch.empty(shape, device="meta", dtype=dtype, requires_grad=True)
    context = torch.empty(1, config.text_len, config.text_dim, device="meta", dtype=dtype)
    timestep = torch.empty(1, device="meta")
    with flash_attention_on_meta():
        return saved_activation_bytes(dit, latents, timestep, context, block, checkpointing=checkpointing)
