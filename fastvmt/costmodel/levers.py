"""Each speed lever alone on the official release's recipe, and all of them (``fastvmt_turbo``), against the
release and DiTFlow: what ``fastvmt bench cost`` prints as its lever table (docs/algorithm.md#presets).

The levers keep the spec's guidance: the early exit at the captured block's q/k (instead of the release's full
blocks), the truncated start (``strength_semantics="truncate"``) and the step cache after the last guided step
(``fastvmt_turbo``'s threshold, skipping the assumed share ``step_cache_skip`` of what it may skip).
"""

from __future__ import annotations

import dataclasses

from fastvmt.backbones.architecture import DiTConfig
from fastvmt.costmodel.recipes import RECIPES, GuidanceRecipe
from fastvmt.costmodel.runs import STEP_CACHE_SKIP, RunCost, Sampling, run_cost
from fastvmt.interfaces import TokenGrid
from fastvmt.strategies.presets import FASTVMT_TURBO

__all__ = ["LEVERS", "lever_costs"]

RELEASE = "fastvmt-release"


def _with_strategy(recipe: GuidanceRecipe, name: str, **changes: object) -> GuidanceRecipe:
    return dataclasses.replace(recipe, name=name, strategy=recipe.strategy.override(**changes))


#: Each lever as a change of the release's recipe.
LEVERS = {
    "release + early exit": lambda r: dataclasses.replace(r, name="release + early exit",
                                                          guidance_forward="early_exit"),
    "release + truncated start": lambda r: _with_strategy(r, "release + truncated start",
                                                          strength_semantics=FASTVMT_TURBO.strength_semantics),
    "release + step cache": lambda r: _with_strategy(r, "release + step cache", step_cache=FASTVMT_TURBO.step_cache),
}


def lever_costs(config: DiTConfig, grid: TokenGrid, sampling: Sampling = Sampling(),
                step_cache_skip: float = STEP_CACHE_SKIP) -> dict[str, RunCost]:
    """The release, each lever alone on it, ``fastvmt_turbo`` (all of them) and DiTFlow, by name."""
    release = RECIPES[RELEASE]
    recipes = {RELEASE: release, **{name: lever(release) for name, lever in LEVERS.items()},
               "fastvmt_turbo": RECIPES["fastvmt_turbo"], "ditflow": RECIPES["ditflow"]}
    return {name: run_cost(recipe, config, grid, sampling, step_cache_skip) for name, recipe in recipes.items()}
