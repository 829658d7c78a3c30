"""FLOP cost model of whole guided generations on Wan2.1 (``fastvmt bench cost``).

``wan``: one DiT pass by formula; ``amf``: the motion-extraction ops; ``runs``: a whole run by phase.
"""

from fastvmt.costmodel.amf import AMFConfig, AMFFlops, amf_flops, pair_count
from fastvmt.costmodel.runs import PHASES, RECIPES, GuidanceRecipe, RunCost, Sampling, run_cost, steps_run
from fastvmt.costmodel.wan import (
    WAN_CONFIGS,
    Depth,
    TokenCounts,
    WanConfig,
    backward_flops,
    forward_flops,
    video_tokens,
)

__all__ = [
    "AMFConfig",
    "AMFFlops",
    "Depth",
    "GuidanceRecipe",
    "PHASES",
    "RECIPES",
    "RunCost",
    "Sampling",
    "TokenCounts",
    "WAN_CONFIGS",
    "WanConfig",
    "amf_flops",
    "backward_flops",
    "forward_flops",
    "pair_count",
    "run_cost",
    "steps_run",
    "video_tokens",
]
