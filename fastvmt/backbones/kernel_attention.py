"""The Wan DiT's attention modules on the kernels of an :class:`~fastvmt.backbones.attention.AttentionChoice`
(docs/algorithm.md#attention-kernels)."""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from fastvmt.backbones.attention import AttentionChoice

__all__ = ["KernelAttention", "use_kernels"]

log = logging.getLogger(__name__)


def _kernel_function(kernel: str):
    from diffsynth.core.attention import attention

    return {
        "torch": attention.torch_sdpa,
        "flash_attention_2": attention.flash_attention_2,
        "flash_attention_3": attention.flash_attention_3,
        "flash_attention_4": attention.flash_attention_4,
        "sage_attention": attention.sage_attention,
        "xformers": attention.xformers_attention,
    }[kernel]


class KernelAttention(nn.Module):
    """diffsynth's Wan ``AttentionModule`` (``(q, k, v)``, each ``(b, s, heads * d)``, to ``(b, s, heads * d)``)
    on the kernels of an :class:`AttentionChoice`: ``gradient_kernel`` when gradients are on and an input needs
    them, else ``kernel``."""

    def __init__(self, num_heads: int, choice: AttentionChoice):
        super().__init__()
        self.num_heads = num_heads
        self.choice = choice
        self._attend = _kernel_function(choice.kernel)
        self._attend_with_gradient = _kernel_function(choice.gradient_kernel)

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        needs_gradient = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)
        attend = self._attend_with_gradient if needs_gradient else self._attend
        pattern = "b s (n d)"
        return attend(q, k, v, q_pattern=pattern, k_pattern=pattern, v_pattern=pattern, out_pattern=pattern,
                      dims={"n": self.num_heads})


def use_kernels(dit: nn.Module, choice: AttentionChoice) -> nn.Module:
    """``dit`` with each of its ``AttentionModule``\\ s replaced by a :class:`KernelAttention` of ``choice`` (in
    place; the modules hold no weights). Logs :attr:`AttentionChoice.note`."""
    from diffsynth.models.wan_video_dit import AttentionModule

    for parent in list(dit.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, (AttentionModule, KernelAttention)):
                setattr(parent, name, KernelAttention(child.num_heads, choice))
    log.info("DiT attention: %s", choice.kernel)
    if choice.note is not None:
        log.warning("%s", choice.note)
    return dit
