"""FLOPs of a whole guided generation, split by phase, for the strategies compared in the paper.

A run samples ``steps_run`` flow-matching steps with classifier-free guidance (two full DiT passes a step); its
first ``guided`` steps are guided: reference features (per guided step, or once), then ``J`` inner iterations of
which those with ``j % interval == 0`` compute a gradient (a guidance forward to the features, the AMF of the
generated video, and the backward to the latents). VAE, text encoder and optimiser updates are not counted: they
are the same for every strategy and small next to the DiT.

Steps actually run for a denoising strength ``s``: diffsynth's ``FlowMatchScheduler`` (template ``Wan``)
spreads all ``num_steps`` steps over the sigma range ``[s, 0]`` (``sigmas = linspace(s, 0, steps + 1)[:-1]``),
so it runs ``num_steps`` steps for any ``s``: that is the default, ``strength_semantics="diffsynth"``.
``"truncate"`` is diffusers' img2img convention, which runs only the last ``int(num_steps * s)`` steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from fastvmt.costmodel.amf import AMFConfig, amf_flops
from fastvmt.costmodel.wan import Depth, TokenCounts, WanConfig, backward_flops, forward_flops

__all__ = ["PHASES", "RECIPES", "GuidanceRecipe", "RunCost", "Sampling", "guided_steps", "run_cost", "steps_run"]

#: The phases a run's FLOPs are split into, in report order.
PHASES = ("denoising (CFG)", "reference features", "guidance forward", "guidance backward", "AMF ops")


@dataclass(frozen=True)
class Sampling:
    """The sampler settings shared by every strategy (docs/algorithm.md#guided-sampling)."""

    num_steps: int = 50
    guided_fraction: float = 0.2
    cfg: bool = True
    strength_semantics: Literal["diffsynth", "truncate"] = "diffsynth"

    def __post_init__(self) -> None:
        if self.num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {self.num_steps}")
        if not 0.0 <= self.guided_fraction <= 1.0:
            raise ValueError(f"guided_fraction must be in [0, 1], got {self.guided_fraction}")
        if self.strength_semantics not in ("diffsynth", "truncate"):
            raise ValueError(f"strength_semantics must be 'diffsynth' or 'truncate', got {self.strength_semantics!r}")


@dataclass(frozen=True)
class GuidanceRecipe:
    """The cost-relevant parts of a strategy.

    ``guidance_forward`` is how far the guidance and reference forwards run: ``"early_exit"`` stops at
    ``block``'s q/k (this package), ``"blocks:N"`` runs ``N`` full blocks (the official release: 20),
    ``"full"`` runs the whole DiT. The backward always starts from ``block``'s q/k.
    """

    name: str
    summary: str
    amf: AMFConfig
    inner_iterations: int
    gradient_interval: int
    reference: Literal["per_step", "once"]
    denoising_strength: float
    block: int = 14
    guidance_forward: str = "early_exit"

    def __post_init__(self) -> None:
        if self.inner_iterations < 1 or self.gradient_interval < 1:
            raise ValueError(f"{self.name}: inner_iterations and gradient_interval must be >= 1")
        if not 0.0 < self.denoising_strength <= 1.0:
            raise ValueError(f"{self.name}: denoising_strength must be in (0, 1], got {self.denoising_strength}")
        if self.reference not in ("per_step", "once"):
            raise ValueError(f"{self.name}: reference must be 'per_step' or 'once', got {self.reference!r}")
        self._forward_blocks()

    @property
    def gradients_per_step(self) -> int:
        """Inner iterations that compute a gradient: ``j % interval == 0`` for ``j < J``."""
        return math.ceil(self.inner_iterations / self.gradient_interval)

    def _forward_blocks(self) -> int | None:
        """``N`` of ``"blocks:N"``, ``None`` for the other forms; ``ValueError`` for anything else."""
        if self.guidance_forward in ("early_exit", "full"):
            return None
        prefix, _, count = self.guidance_forward.partition(":")
        if prefix != "blocks" or not count.isdigit() or int(count) <= self.block:
            raise ValueError(
                f"{self.name}: guidance_forward must be 'early_exit', 'full' or 'blocks:N' with N > block "
                f"({self.block}), got {self.guidance_forward!r}"
            )
        return int(count)

    def forward_depth(self, config: WanConfig) -> Depth:
        """How far the guidance and reference forwards run on ``config``."""
        blocks = self._forward_blocks()
        if blocks is not None:
            return Depth.through_blocks(blocks)
        return Depth.full(config) if self.guidance_forward == "full" else Depth.until_qk(self.block)


_FASTVMT_AMF = AMFConfig("windowed", pairs="forward", span=4, heads="mean_qk", tile=(3, 4), window=21)
_DITFLOW_AMF = AMFConfig("dense", pairs="all", heads="mean_logits", reference_argmax=True)

RECIPES = {
    recipe.name: recipe
    for recipe in (
        GuidanceRecipe(
            "ditflow", "dense AMF, all pairs, 5 gradients/step, reference once, early exit at block 14",
            _DITFLOW_AMF, inner_iterations=5, gradient_interval=1, reference="once", denoising_strength=1.0,
        ),
        GuidanceRecipe(
            "ditflow-fullpass", "as ditflow, guidance forward through the whole DiT (DiTFlow's own code)",
            _DITFLOW_AMF, inner_iterations=5, gradient_interval=1, reference="once", denoising_strength=1.0,
            guidance_forward="full",
        ),
        GuidanceRecipe(
            "fastvmt-release", "windowed AMF, interval 3 (4 of 10 gradients), forward through 20 blocks",
            _FASTVMT_AMF, inner_iterations=10, gradient_interval=3, reference="per_step", denoising_strength=0.75,
            guidance_forward="blocks:20",
        ),
        GuidanceRecipe(
            "fastvmt", "windowed AMF, interval 3 (4 of 10 gradients), early exit at block 14's q/k",
            _FASTVMT_AMF, inner_iterations=10, gradient_interval=3, reference="per_step", denoising_strength=0.75,
        ),
    )
}


def steps_run(sampling: Sampling, strength: float) -> int:
    """Denoising steps a run executes at ``strength`` (see the module docstring)."""
    if sampling.strength_semantics == "diffsynth":
        return sampling.num_steps
    return max(1, int(sampling.num_steps * strength))


def guided_steps(fraction: float, num_steps: int) -> int:
    """Leading guided steps: ``round(fraction * num_steps)``, at least 1 when ``fraction > 0``.

    The rule of ``fastvmt.strategies.schedulers.guided_step_count``, restated so the cost model stays torch-free.
    """
    return 0 if fraction <= 0 else max(1, round(fraction * num_steps))


@dataclass(frozen=True)
class RunCost:
    """FLOPs of one run by phase, with the counts they come from."""

    recipe: str
    backbone: str
    grid: TokenCounts
    steps: int
    guided: int
    gradients: int
    reference_passes: int
    phases: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.phases.values())

    def seconds_at(self, flops_per_second: float) -> float:
        """Time floor: total FLOPs at a sustained rate (H100 bf16 dense: 790e12 FLOP/s as used here)."""
        return self.total / flops_per_second


def run_cost(
    recipe: GuidanceRecipe, config: WanConfig, grid: TokenCounts, sampling: Sampling = Sampling()
) -> RunCost:
    """FLOPs of one guided generation of ``grid`` with ``recipe`` on ``config``, by phase."""
    steps = steps_run(sampling, recipe.denoising_strength)
    guided = guided_steps(sampling.guided_fraction, steps)
    gradients = guided * recipe.gradients_per_step
    reference_passes = (guided if recipe.reference == "per_step" else 1) if guided else 0
    depth = recipe.forward_depth(config)
    amf = amf_flops(recipe.amf, config, grid)
    phases = {
        PHASES[0]: steps * (2 if sampling.cfg else 1) * forward_flops(config, grid, Depth.full(config)),
        PHASES[1]: reference_passes * forward_flops(config, grid, depth),
        PHASES[2]: gradients * forward_flops(config, grid, depth),
        PHASES[3]: gradients * backward_flops(config, grid, Depth.until_qk(recipe.block)),
        PHASES[4]: reference_passes * amf.reference + gradients * (amf.forward + amf.backward),
    }
    return RunCost(recipe.name, config.name, grid, steps, guided, gradients, reference_passes, phases)
