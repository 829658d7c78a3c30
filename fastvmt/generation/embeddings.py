"""Guidance on the RoPE angles and key/value injection: what a guided step changes in the DiT's attention besides
the latent (docs/algorithm.md#motion-embeddings).

:class:`AttentionControl` holds a run's state: the RoPE angle offsets ``(tokens, head_dim/2)``, float32, zero at
the start and warm-started from guided step to guided step (:func:`guide_rope` optimises them with a fresh
optimiser per step), the angles in effect after each guided step (what a motion file saves), and the reference's
keys and values of the ``kv_injection`` blocks for the current guided step. Both act during guided steps only (on
the guidance readings and on the denoising velocity, both classifier-free guidance branches); later steps use the
DiT's own RoPE and attention, as DiTFlow does.

With the ``rope`` target the latent is not optimised. Attention readings keep their graph to the angles through
the captured block and the blocks before it. A latent prediction is read as for the latent target, without a graph
through the DiT (FlowMotion's definition), so its loss terms do not move the angles: the ``rope`` target needs an
extractor that reads attention (a hybrid one's latent terms are reported, not optimised).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import torch
from torch import Tensor

from fastvmt.backbones.injection import (
    KeyValues,
    attention_dit,
    inject_kv,
    record_kv,
    rope_offset,
)
from fastvmt.generation.finite import check_finite
from fastvmt.generation.guidance import GuidanceStep, apply_gradient, no_gradient_to_reuse, optimizer_for
from fastvmt.generation.readings import BackboneReader
from fastvmt.generation.report import RunCounts
from fastvmt.generation.sampling import add_noise
from fastvmt.interfaces import ATTENTION, PREDICTION, Backbone, InnerStep, TokenGrid
from fastvmt.strategies.components import Components
from fastvmt.strategies.spec import Strategy

__all__ = ["AttentionControl", "guide_rope"]


class AttentionControl:
    """A run's RoPE angle offsets and injected keys and values (see the module docstring).

    ``ValueError`` before any work when the strategy needs them (``target="rope"`` or ``kv_injection``) and the
    backbone has no Wan DiT.
    """

    def __init__(self, backbone: Backbone, strategy: Strategy, grid: TokenGrid, guided_steps: list[int]):
        self.backbone, self.strategy, self.guided_steps = backbone, strategy, guided_steps
        self.rope = strategy.guided and strategy.target == "rope"
        self.kv_blocks = strategy.kv_injection if strategy.guided else ()
        self.dit = self.check(backbone, strategy)
        self.angles: Tensor | None = None
        if self.rope:
            self.angles = torch.zeros(grid.tokens, backbone.head_dim // 2, device=backbone.device)
        self.saved: list[Tensor] = []
        self.key_values: KeyValues | None = None

    @staticmethod
    def check(backbone: Backbone, strategy: Strategy, components: Components | None = None):
        """The backbone's DiT when ``strategy`` acts on its attention (else ``None``); ``ValueError`` when it
        needs one and ``backbone`` has none, or the ``rope`` target meets an extractor that reads no attention."""
        if not strategy.guided:
            return None
        if strategy.target == "rope":
            if components is not None and ATTENTION not in components.extractor.reads:
                raise ValueError(
                    f"strategy {strategy.name!r}: target='rope' needs an extractor that reads attention; "
                    f"{strategy.extractor.name!r} reads {', '.join(sorted(components.extractor.reads))} only, "
                    "whose gradient reaches the latent, never the RoPE angles"
                )
            return attention_dit(backbone, "the 'rope' guidance target")
        if strategy.kv_injection:
            return attention_dit(backbone, "key/value injection (kv_injection)")
        return None

    def read_reference_kv(self, reader: BackboneReader, reference_latents: Tensor, start_noise: Tensor,
                          sigma: float, timestep: float, context: Tensor) -> None:
        """Record the ``kv_injection`` blocks' keys and values of the reference noised to ``sigma`` with the run's
        start noise, read with the prompt's ``context`` (the forward stops at the last of those blocks)."""
        if not self.kv_blocks:
            return
        latents = add_noise(reference_latents, start_noise, sigma)
        last = self.kv_blocks[-1]
        with torch.no_grad():
            self.key_values = record_kv(self.dit, self.kv_blocks,
                                        lambda: self.backbone.features(latents, timestep, context, block=last))
        reader.counts.blocks_forward += last + 1
        reader.counts.kv_reference_reads += 1

    def injecting(self, counts: RunCounts) -> AbstractContextManager[None]:
        """The current guided step's keys and values injected (no change without injection); every attention call
        so changed adds one to ``counts.kv_injected_calls``."""
        if not self.key_values:
            return nullcontext()

        def count() -> None:
            counts.kv_injected_calls += 1

        return inject_kv(self.dit, self.key_values, count)

    @contextmanager
    def guided(self, counts: RunCounts) -> Iterator[None]:
        """A guided step's denoising: the current RoPE angles and injected keys and values in effect."""
        with rope_offset(self.dit, self.angles) if self.rope else nullcontext(), self.injecting(counts):
            yield

    def finish_step(self) -> None:
        """End of a guided step: keep its angles (what a motion file saves) and drop its keys and values."""
        if self.rope:
            self.saved.append(self.angles.detach().cpu().clone())
        self.key_values = None


def guide_rope(
    control: AttentionControl,
    latents: Tensor,
    step: GuidanceStep,
    *,
    reader: BackboneReader,
    components: Components,
    strategy: Strategy,
    context: Tensor,
    negative: Tensor | None,
    cfg_scale: float,
) -> list[dict[str, float]]:
    """Optimise ``control.angles`` towards the reference motion at the fixed ``latents`` (updated in place of the
    control); returns the loss parts of every gradient computed. A reused iteration reuses the last gradient."""
    extractor, reads, counts = components.extractor, components.extractor.reads, reader.counts
    master = control.angles.detach().clone().requires_grad_(True)
    optimizer = optimizer_for(strategy, master)
    latents = latents.detach()
    path_velocity = step.path_velocity(latents) if PREDICTION in reads else None
    gradient: Tensor | None = None
    losses: list[dict[str, float]] = []
    reused = 0
    for inner in range(strategy.inner_iterations):
        position = InnerStep(step.outer_step, step.num_outer_steps, inner, strategy.inner_iterations,
                             tuple(parts["total"] for parts in losses), reused)
        if components.scheduler.should_compute(position):
            with rope_offset(control.dit, master), control.injecting(counts):
                readings = reader.read(reads, latents, sigma=step.sigma, timestep=step.timestep, context=context,
                                       negative=negative, cfg_scale=cfg_scale, path_velocity=path_velocity)
                loss = components.loss(step.reference,
                                       extractor.extract(readings.input_for(reads), step.extractor_state))
                (gradient,) = torch.autograd.grad(loss.total, master, allow_unused=True)
            if gradient is None:
                raise RuntimeError(f"the {type(extractor).__name__} motion does not depend on the RoPE angles: "
                                   "nothing to optimise with target='rope'")
            check_finite(gradient, f"the RoPE guidance gradient of iteration {inner}", step=step.outer_step,
                         num_steps=step.num_outer_steps)
            losses.append({"total": loss.total.item(), **loss.parts})
            counts.gradients_computed += 1
            counts.blocks_backward += reader.block + 1
            reused = 0
        elif gradient is None:
            raise no_gradient_to_reuse(components, inner)
        else:
            counts.gradients_reused += 1
            reused += 1
        apply_gradient(optimizer, master, gradient, strategy, step, inner, counts)
    control.angles = master.detach()
    return losses
