"""What the cost model counts of a guided strategy, read from the strategy itself.

A :class:`GuidanceRecipe` is a :class:`~fastvmt.strategies.spec.Strategy`, whose components are built from the
registry as a pipeline builds them (the scheduler says which steps are guided and which inner iterations compute
a gradient, the extractor what it reads of the DiT and what AMF it computes), plus the one thing a strategy does
not say: how far its attention forwards run. This package stops at the captured block's q/k (``"early_exit"``);
the official FastVMT code runs ``RELEASE_GUIDANCE_BLOCKS`` full blocks (``"blocks:N"``); DiTFlow's own code runs
the whole DiT (``"full"``). An extractor that reads latent predictions (FlowMotion) costs whole-DiT velocity
forwards and no backward. ``RECIPES`` are the presets costed those ways.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from fastvmt.backbones.architecture import DiTConfig
from fastvmt.costmodel.wan import Depth
from fastvmt.generation.readings import velocity_passes
from fastvmt.interfaces import ATTENTION, PREDICTION, MotionExtractor
from fastvmt.strategies.components import Components, build_components
from fastvmt.strategies.extractors import WindowedAMFPredictionExtractor
from fastvmt.strategies.presets import DITFLOW, FASTVMT, FASTVMT_FLOWMOTION, FASTVMT_TURBO, FLOWMOTION
from fastvmt.strategies.schedulers import computed_iterations
from fastvmt.strategies.spec import Strategy

__all__ = ["RECIPES", "RELEASE_GUIDANCE_BLOCKS", "GuidanceRecipe"]

#: Full DiT blocks the official FastVMT release runs in a guidance forward, for the same block's features.
RELEASE_GUIDANCE_BLOCKS = 20


@dataclass(frozen=True)
class GuidanceRecipe:
    """A guided strategy and how far its attention forwards run (``"early_exit"``, ``"full"`` or ``"blocks:N"``).

    The backward always starts from the captured block's q/k. ``note`` says whose code runs the recipe.
    """

    name: str
    strategy: Strategy
    guidance_forward: str = "early_exit"
    note: str = ""

    def __post_init__(self) -> None:
        if not self.strategy.guided:
            raise ValueError(f"{self.name}: strategy {self.strategy.name!r} is not guided (its cost is the denoising)")
        self._forward_blocks()

    @cached_property
    def components(self) -> Components:
        """The strategy's extractor, loss and scheduler, built from the registry."""
        return build_components(self.strategy)

    def guided_steps(self, num_steps: int) -> list[int]:
        """The steps of ``num_steps`` the scheduler guides."""
        return [k for k in range(num_steps) if self.components.scheduler.is_guided(k, num_steps)]

    def gradients(self, step: int, num_steps: int) -> int:
        """Gradients computed in guided step ``step`` (a scheduler that reads the losses sees a plateau)."""
        scheduler = self.components.scheduler
        return len(computed_iterations(scheduler, step, num_steps, self.strategy.inner_iterations))

    @property
    def reads(self) -> frozenset[str]:
        """What the extractor reads of the DiT: attention features, latent predictions or both."""
        return self.components.extractor.reads

    @property
    def amf_extractor(self) -> MotionExtractor | None:
        """The extractor whose AMF a run computes (the AMF part of a combined one); ``None`` if it reads no
        attention."""
        extractor = self.components.extractor
        if ATTENTION not in extractor.reads:
            return None
        return extractor.amf if isinstance(extractor, WindowedAMFPredictionExtractor) else extractor

    def reference_passes(self, guided: int) -> int:
        """Reference readings for ``guided`` guided steps: one each, or one in all (``"once"``)."""
        if self.strategy.reference == "once":
            return min(guided, 1)
        return guided

    def reference_velocities(self, guided: int) -> int:
        """Reference velocity forwards (empty prompt, no CFG): one a reading of a latent prediction, none for
        ``"once"`` (the clean latent is its own prediction)."""
        if PREDICTION not in self.reads or self.strategy.reference == "once":
            return 0
        return self.reference_passes(guided)

    @property
    def velocity_passes(self) -> int:
        """DiT passes per denoising (and guidance) velocity: two with classifier-free guidance."""
        return velocity_passes(self.strategy.cfg_scale)

    def _forward_blocks(self) -> int | None:
        """``N`` of ``"blocks:N"``, ``None`` for the other forms; ``ValueError`` for anything else."""
        if self.guidance_forward in ("early_exit", "full"):
            return None
        prefix, _, count = self.guidance_forward.partition(":")
        if prefix != "blocks" or not count.isdigit() or int(count) <= self.strategy.block:
            raise ValueError(
                f"{self.name}: guidance_forward must be 'early_exit', 'full' or 'blocks:N' with N > block "
                f"({self.strategy.block}), got {self.guidance_forward!r}"
            )
        return int(count)

    def forward_depth(self, config: DiTConfig) -> Depth:
        """How far the guidance and reference forwards run on ``config``."""
        blocks = self._forward_blocks()
        if blocks is not None:
            return Depth.through_blocks(blocks)
        return Depth.full(config) if self.guidance_forward == "full" else Depth.until_qk(self.strategy.block)

    @property
    def summary(self) -> str:
        """One line: the components, iterations, reference mode and guidance forwards."""
        strategy, blocks = self.strategy, self._forward_blocks()
        forwards = []
        if ATTENTION in self.reads:
            if blocks is not None:
                forwards.append(f"guidance forward through {blocks} blocks")
            elif self.guidance_forward == "full":
                forwards.append("guidance forward through the whole DiT")
            else:
                forwards.append(f"early exit at block {strategy.block}'s q/k")
            if strategy.guidance_checkpointing:
                forwards[-1] += ", checkpointed"
        if PREDICTION in self.reads:
            forwards.append("velocity forwards without backward")
        text = (
            f"{strategy.extractor}, {strategy.inner_iterations} iterations with {strategy.scheduler}, "
            f"reference {strategy.reference}, {' + '.join(forwards)}"
        )
        return f"{text} ({self.note})" if self.note else text


RECIPES = {
    recipe.name: recipe
    for recipe in (
        GuidanceRecipe("ditflow", DITFLOW),
        GuidanceRecipe("ditflow-fullpass", DITFLOW, guidance_forward="full", note="DiTFlow's own code"),
        GuidanceRecipe(
            "fastvmt-release", FASTVMT, guidance_forward=f"blocks:{RELEASE_GUIDANCE_BLOCKS}", note="the official code"
        ),
        GuidanceRecipe("fastvmt", FASTVMT),
        GuidanceRecipe("fastvmt_turbo", FASTVMT_TURBO),
        GuidanceRecipe("flowmotion", FLOWMOTION),
        GuidanceRecipe("fastvmt_flowmotion", FASTVMT_FLOWMOTION),
    )
}
