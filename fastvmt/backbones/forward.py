"""The Wan2.1 text-to-video DiT forward, and the early-exit forward that captures one block's Q and K.

``dit_forward`` is what diffsynth's ``model_fn_wan_video`` computes for plain text-to-video (no image, VACE,
camera or sequence parallelism), without importing diffsynth's pipeline module. One difference, on purpose:
the sinusoidal timestep embedding is computed in float32 and then cast to the model's dtype (diffsynth's
pipeline rounds the timestep itself to bfloat16 first, which merges neighbouring timesteps near 1000).

Timestep convention (flow matching): ``timestep = sigma * 1000``, sigma in [0, 1] the noise level of
``x_sigma = (1 - sigma) x_0 + sigma * noise``; the DiT predicts the velocity ``noise - x_0``.
"""

from __future__ import annotations

import torch
from diffsynth.core.gradient import gradient_checkpoint_forward
from diffsynth.models.wan_video_dit import WanModel, sinusoidal_embedding_1d
from einops import rearrange
from jaxtyping import Float
from torch import Tensor

from fastvmt.backbones.conditioning import Conditioning
from fastvmt.backbones.step_cache import BranchCache

__all__ = ["capture_qk", "dit_forward", "rope_frequencies"]


class _StopForward(Exception):
    """Raised by the capture hook to end the forward at the captured attention call."""


def rope_frequencies(dit: WanModel, frames: int, height: int, width: int, device: torch.device) -> Tensor:
    """3D RoPE rotations (complex) of every token of an ``frames x height x width`` grid: ``(f*h*w, 1, d/2)``."""
    f_freqs, h_freqs, w_freqs = dit.freqs
    return torch.cat(
        [
            f_freqs[:frames].view(frames, 1, 1, -1).expand(frames, height, width, -1),
            h_freqs[:height].view(1, height, 1, -1).expand(frames, height, width, -1),
            w_freqs[:width].view(1, 1, width, -1).expand(frames, height, width, -1),
        ],
        dim=-1,
    ).reshape(frames * height * width, 1, -1).to(device)


def dit_forward(
    dit: WanModel,
    latents: Float[Tensor, "1 c f h8 w8"],
    timestep: Float[Tensor, "1"],
    context: Float[Tensor, "b l ct"],
    *,
    image: Conditioning | None = None,
    checkpointed_blocks: int = 0,
    cache: BranchCache | None = None,
) -> Float[Tensor, "b c f h8 w8"]:
    """Velocity for each of the ``b`` contexts (the latent is shared): one batched forward; an image-to-video DiT
    reads its first-frame ``image`` conditioning too.

    Blocks ``0..checkpointed_blocks-1`` run under activation checkpointing when gradients are enabled
    (diffsynth's ``gradient_checkpoint_forward``, non-reentrant): autograd keeps only each block's inputs and
    recomputes the block in the backward. The values and gradients are those without it. With ``cache`` (a step
    cache's branch, :mod:`fastvmt.backbones.step_cache`) the blocks may be skipped for their cached residual.
    """
    if image is not None:  # a timestep per token for a fused first frame (Wan2.2 TI2V), else the step's
        timestep = image.timesteps(timestep, latents, dit.patch_size)
    t = dit.time_embedding(sinusoidal_embedding_1d(dit.freq_dim, timestep.flatten().float()).to(latents.dtype))
    t = t.reshape(*timestep.shape, -1)
    t_mod = dit.time_projection(t).unflatten(-1, (6, dit.dim))
    context = dit.text_embedding(context)
    if image is not None:
        latents, context = image.attach(dit, latents, context)
    x = dit.patchify(latents)
    frames, height, width = x.shape[2:]
    x = rearrange(x, "b c f h w -> b (f h w) c").contiguous()
    x = x.expand(context.shape[0], -1, -1)
    freqs = rope_frequencies(dit, frames, height, width, x.device)
    checkpointing = torch.is_grad_enabled()  # without a graph there is nothing to recompute

    def run_blocks(tokens: Tensor) -> Tensor:
        for index, block in enumerate(dit.blocks):
            checkpointed = checkpointing and index < checkpointed_blocks
            tokens = gradient_checkpoint_forward(block, checkpointed, False, tokens, context, t_mod, freqs)
        return tokens

    x = run_blocks(x) if cache is None else cache.blocks(dit, x, t_mod, run_blocks)
    x = dit.head(x, t)
    return dit.unpatchify(x, (frames, height, width))


def capture_qk(
    dit: WanModel,
    latents: Float[Tensor, "1 c f h8 w8"],
    timestep: Float[Tensor, "1"],
    context: Float[Tensor, "1 l ct"],
    block: int,
    *,
    checkpointing: bool = False,
    image: Conditioning | None = None,
) -> tuple[Float[Tensor, "1 s hd"], Float[Tensor, "1 s hd"]]:
    """``block``'s self-attention q and k as its attention call receives them (after q/k RMSNorm and RoPE).

    A forward pre-hook on ``dit.blocks[block].self_attn.attn`` records them and raises, so the forward stops
    there: blocks after ``block``, the attention itself and the head never run. The autograd graph from the
    latents to q and k is intact.

    ``checkpointing``: blocks ``0..block-1`` run checkpointed (:func:`dit_forward`), so the backward recomputes
    them from their inputs instead of autograd keeping their activations. Block ``block`` itself runs as usual:
    its recomputation would meet the raising hook again, and its part that runs (modulation, norm, q/k
    projections, RMSNorm, RoPE) keeps little next to a whole block.
    """
    captured: dict[str, Tensor] = {}

    # A plain closure, not a bound method: diffsynth's VRAM wrappers may deep-copy the block (and its hooks)
    # and a closure survives that copy by reference.
    def hook(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        captured["q"] = args[0] if len(args) > 0 else kwargs["q"]
        captured["k"] = args[1] if len(args) > 1 else kwargs["k"]
        raise _StopForward

    handle = dit.blocks[block].self_attn.attn.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        dit_forward(dit, latents, timestep, context, image=image, checkpointed_blocks=block if checkpointing else 0)
    except _StopForward:
        pass
    finally:
        handle.remove()
    if "q" not in captured:
        raise RuntimeError(f"the forward finished without calling block {block}'s self-attention")
    return captured["q"], captured["k"]
