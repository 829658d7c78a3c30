"""FLOPs of a whole guided generation, split by phase, for a :class:`~fastvmt.costmodel.recipes.GuidanceRecipe`.

A run samples ``steps_run`` flow-matching steps (two full DiT passes a step with classifier-free guidance); the
steps its scheduler guides get reference readings (per guided step, or once), then ``J`` inner iterations of
which those the scheduler picks read the DiT afresh and compute a gradient. Reading attention features costs a
guidance forward to the features, the AMF of the generated video and the backward to the latents (with the
strategy's ``guidance_checkpointing``, the backward also recomputes the forward of the blocks before the captured
one, docs/algorithm.md#memory); reading a latent
prediction (FlowMotion) costs a whole-DiT velocity forward (two passes with CFG; one for the reference, none for a
clean reference) and no backward, its loss on the latents being negligible. VAE, text encoder and optimiser
updates are not counted: they are the same for every strategy and small next to the DiT.

Steps that run: those of the recipe's strategy at ``Sampling.num_steps`` (its ``denoising_strength`` and
``strength_semantics``, :func:`fastvmt.generation.sampling.steps_run`): all of them with diffsynth's semantics,
about ``strength * num_steps`` truncated.

Step cache (docs/algorithm.md#step-cache): which velocities TeaCache skips depends on the weights, so the model
takes the share it skips as an assumption, ``step_cache_skip`` (:data:`STEP_CACHE_SKIP`), of the unguided steps it
may skip (all after the last guided step but their first and last, which TeaCache always computes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastvmt.backbones import RECOMMENDED_RUN
from fastvmt.backbones.architecture import DiTConfig
from fastvmt.costmodel.amf import AMFFlops, amf_flops
from fastvmt.costmodel.recipes import GuidanceRecipe
from fastvmt.costmodel.wan import Depth, backward_flops, forward_flops
from fastvmt.generation.sampling import check_num_steps, steps_run
from fastvmt.interfaces import PREDICTION, TokenGrid
from fastvmt.values import check_real

__all__ = ["PHASES", "STEP_CACHE_SKIP", "RunCost", "Sampling", "cached_steps", "run_cost"]

#: The phases a run's FLOPs are split into, in report order.
PHASES = ("denoising (CFG)", "reference features", "guidance forward", "guidance backward", "AMF ops")
#: Assumed share of the skippable velocity forwards the step cache skips: 1 - 1/2.0, from the about 2.0x end-to-end
#: speedup TeaCache reports for Wan2.1 T2V at its fastest recommended threshold (ali-vilab/TeaCache,
#: TeaCache4Wan2.1: 0.20 for the 14B). An assumption, not a measurement of this package: the share depends on the
#: threshold, the model and the video.
STEP_CACHE_SKIP = 1 - 1 / 2.0


@dataclass(frozen=True)
class Sampling:
    """The sampler settings a strategy does not hold (docs/algorithm.md#guided-sampling)."""

    num_steps: int = RECOMMENDED_RUN.num_steps

    def __post_init__(self) -> None:
        check_num_steps(self.num_steps)


@dataclass(frozen=True)
class RunCost:
    """FLOPs of one run by phase, with the counts they come from."""

    recipe: str
    grid: TokenGrid
    steps: int
    guided: int
    gradients: int
    reference_passes: int
    phases: dict[str, int] = field(default_factory=dict)
    cached_steps: int = 0

    @property
    def total(self) -> int:
        return sum(self.phases.values())

    def seconds_at(self, flops_per_second: float) -> float:
        """Time floor: total FLOPs at a sustained rate in FLOP/s."""
        return self.total / flops_per_second


def cached_steps(steps: int, last_guided: int, step_cache_skip: float) -> int:
    """Denoising steps the step cache is assumed to skip: ``step_cache_skip`` of the steps after ``last_guided``
    but their first and last, rounded."""
    skippable = max(steps - 1 - last_guided - 2, 0)
    return round(check_real("step_cache_skip", step_cache_skip, low=0.0, high=1.0) * skippable)


def run_cost(
    recipe: GuidanceRecipe, config: DiTConfig, grid: TokenGrid, sampling: Sampling = Sampling(),
    step_cache_skip: float = STEP_CACHE_SKIP,
) -> RunCost:
    """FLOPs of one guided generation of ``grid`` with ``recipe`` on the DiT ``config``, by phase; with the
    strategy's step cache on, ``step_cache_skip`` is the assumed share of skippable steps skipped."""
    strategy = recipe.strategy
    steps = steps_run(sampling.num_steps, strategy.denoising_strength, strategy.strength_semantics)
    guided_steps = recipe.guided_steps(steps)
    cached = 0 if strategy.step_cache is None else cached_steps(steps, max(guided_steps, default=-1), step_cache_skip)
    gradients = sum(recipe.gradients(k, steps) for k in guided_steps)
    reference_passes = recipe.reference_passes(len(guided_steps))
    velocity = forward_flops(config, grid, Depth.full(config))
    attention = recipe.amf_extractor is not None
    if attention:
        features = forward_flops(config, grid, recipe.forward_depth(config))
        backward = backward_flops(config, grid, Depth.until_qk(recipe.strategy.block))
        if strategy.guidance_checkpointing:
            block = recipe.strategy.block
            backward += forward_flops(config, grid, Depth(block)) - forward_flops(config, grid, Depth(0))
        amf = amf_flops(recipe.amf_extractor, config, grid)
    else:
        features, backward, amf = 0, 0, AMFFlops(0, 0, 0)
    guidance_velocity = recipe.velocity_passes * velocity if PREDICTION in recipe.reads else 0
    phases = {
        PHASES[0]: (steps - cached) * recipe.velocity_passes * velocity,
        PHASES[1]: reference_passes * features + recipe.reference_velocities(len(guided_steps)) * velocity,
        PHASES[2]: gradients * (features + guidance_velocity),
        PHASES[3]: gradients * backward,
        PHASES[4]: reference_passes * amf.reference + gradients * (amf.forward + amf.backward),
    }
    return RunCost(recipe.name, grid, steps, len(guided_steps), gradients, reference_passes, phases, cached)
