"""Which attention kernel the Wan DiT runs (docs/algorithm.md#attention-kernels).

diffsynth's Wan DiT calls ``wan_video_dit.flash_attention``, which picks a kernel from module flags set at import
(flash-attention 3, else 2, else SageAttention, else torch's SDPA). fastvmt chooses per backbone instead: the DiT's
``AttentionModule``\\ s are swapped for :class:`~fastvmt.backbones.kernel_attention.KernelAttention`, which calls
diffsynth's own per-kernel functions (``diffsynth.core.attention.attention``, diffsynth's names) and changes no
global state, so two backbones in one process may use different kernels.

A kernel without a backward (SageAttention; flash-attention 4, whose backward fastvmt does not rely on) serves the
calls without gradient (the denoising velocity, the reference readings); a call whose inputs need gradients (the
guidance forward) runs :attr:`AttentionChoice.gradient_kernel`, the first available kernel with a backward.

This module imports neither torch nor diffsynth (the CLI checks ``--attention`` with it); diffsynth's flags are
read when a choice is resolved.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ATTENTION_CHOICES", "AttentionChoice", "resolve_attention"]

#: The kernels by diffsynth's names (``torch``: ``scaled_dot_product_attention``), with ``auto`` first.
ATTENTION_CHOICES = ("auto", "torch", "flash_attention_2", "flash_attention_3", "flash_attention_4",
                     "sage_attention", "xformers")
#: What ``auto`` picks, in order: what diffsynth's Wan DiT itself calls (``wan_video_dit.flash_attention``).
_AUTO_ORDER = ("flash_attention_3", "flash_attention_2", "sage_attention", "torch")
#: Kernels with a backward, in the order the guidance forward falls back to them.
_WITH_BACKWARD = ("flash_attention_3", "flash_attention_2", "xformers", "torch")
#: diffsynth's availability flag of each kernel (``diffsynth.core.attention.attention``) and the package it needs.
_FLAGS = {
    "flash_attention_2": ("FLASH_ATTN_2_AVAILABLE", "flash-attn (flash_attn)"),
    "flash_attention_3": ("FLASH_ATTN_3_AVAILABLE", "flash-attention 3 (flash_attn_interface)"),
    "flash_attention_4": ("FLASH_ATTN_4_AVAILABLE", "flash-attention 4 (flash_attn.cute)"),
    "sage_attention": ("SAGE_ATTN_AVAILABLE", "sageattention"),
    "xformers": ("XFORMERS_AVAILABLE", "xformers"),
}


def _available(kernel: str) -> bool:
    """Whether diffsynth found the package of ``kernel`` at import (torch's SDPA always is)."""
    if kernel == "torch":
        return True
    from diffsynth.core.attention import attention

    return bool(getattr(attention, _FLAGS[kernel][0]))


@dataclass(frozen=True)
class AttentionChoice:
    """The kernel asked for (``requested``), the one calls without gradient run (``kernel``) and the one calls
    whose inputs need gradients run (``gradient_kernel``, ``kernel`` itself when it has a backward)."""

    requested: str
    kernel: str
    gradient_kernel: str

    @property
    def note(self) -> str | None:
        """A line saying the guidance forward runs another kernel, or None when it does not."""
        if self.gradient_kernel == self.kernel:
            return None
        return (f"attention {self.kernel} has no backward in fastvmt: the guidance forward (with gradients) runs "
                f"{self.gradient_kernel}, the other DiT calls {self.kernel}")

    def to_dict(self) -> dict[str, str | None]:
        return {"requested": self.requested, "kernel": self.kernel, "gradient_kernel": self.gradient_kernel,
                "note": self.note}


def resolve_attention(requested: str) -> AttentionChoice:
    """The kernels ``requested`` (one of :data:`ATTENTION_CHOICES`) runs; ``ValueError`` for an unknown name or a
    kernel whose package is not installed (nothing is loaded: call it before the weights)."""
    if requested not in ATTENTION_CHOICES:
        raise ValueError(f"attention must be one of {', '.join(ATTENTION_CHOICES)}, got {requested!r}")
    if requested == "auto":
        kernel = next(k for k in _AUTO_ORDER if _available(k))
    elif not _available(requested):
        raise ValueError(f"attention {requested!r} needs the package {_FLAGS[requested][1]}, which is not "
                         f"installed (diffsynth did not find it); install it or use --attention torch or auto")
    else:
        kernel = requested
    gradient_kernel = kernel if kernel in _WITH_BACKWARD else next(k for k in _WITH_BACKWARD if _available(k))
    return AttentionChoice(requested, kernel, gradient_kernel)
