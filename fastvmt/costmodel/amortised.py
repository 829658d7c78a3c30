"""The cost of N prompts sharing one motion (docs/algorithm.md#motion-embeddings): one guided run with the
``rope`` target saves the motion embeddings, the other N - 1 prompts sample with them at the cost of plain sampling
(the guided run's denoising phase: same schedule, same CFG passes, no reference, no guidance), against N guided
runs. The rope target's guidance costs what the latent target's does: the same forwards to the captured block's
q/k and the same backward through them (to the RoPE angles instead of the latent; the difference, the patch
embedding, is not counted)."""

from __future__ import annotations

from dataclasses import dataclass

from fastvmt.backbones.architecture import DiTConfig
from fastvmt.costmodel.recipes import GuidanceRecipe
from fastvmt.costmodel.runs import PHASES, RunCost, Sampling, run_cost
from fastvmt.generation.motion_file import check_savable
from fastvmt.interfaces import TokenGrid
from fastvmt.strategies.presets import DITFLOW
from fastvmt.values import check_int

__all__ = ["MOTION_RECIPES", "AmortisedCost", "amortised_cost"]

_DITFLOW_ROPE = DITFLOW.override(name="ditflow_rope", target="rope")
#: Recipes whose runs save motion embeddings: ``ditflow`` optimising the RoPE angles (DiTFlow's embedding mode), as
#: this package runs it and with the whole-DiT guidance forwards of DiTFlow's own code.
MOTION_RECIPES = {
    recipe.name: recipe
    for recipe in (
        GuidanceRecipe("ditflow_rope", _DITFLOW_ROPE, note="ditflow with target=rope: saves a motion file"),
        GuidanceRecipe("ditflow_rope-fullpass", _DITFLOW_ROPE, guidance_forward="full", note="DiTFlow's own code"),
    )
}


@dataclass(frozen=True)
class AmortisedCost:
    """FLOPs of ``prompts`` generations with one motion: ``guided`` once plus plain sampling, or ``guided`` each
    time."""

    prompts: int
    guided: RunCost

    @property
    def plain(self) -> int:
        """One generation with saved motion embeddings: the guided run's denoising alone."""
        return self.guided.phases[PHASES[0]]

    @property
    def shared(self) -> int:
        return self.guided.total + (self.prompts - 1) * self.plain

    @property
    def repeated(self) -> int:
        return self.prompts * self.guided.total

    @property
    def per_prompt(self) -> float:
        return self.shared / self.prompts

    @property
    def speedup(self) -> float:
        """How many times fewer FLOPs sharing the motion takes than guiding every prompt."""
        return self.repeated / self.shared


def amortised_cost(recipe: GuidanceRecipe, config: DiTConfig, grid: TokenGrid, prompts: int,
                   sampling: Sampling = Sampling()) -> AmortisedCost:
    """The cost of ``prompts`` generations of ``grid`` sharing the motion of one ``recipe`` run on ``config``;
    ``ValueError`` for a recipe whose runs save no motion embeddings."""
    check_savable(recipe.strategy)
    return AmortisedCost(check_int("prompts", prompts, low=1), run_cost(recipe, config, grid, sampling))
