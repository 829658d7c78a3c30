"""FLOP cost model of whole guided generations on Wan2.1 (``fastvmt bench cost``).

``wan``: one DiT pass by formula; ``amf``: the motion-extraction ops; ``recipes``: what is counted of a strategy;
``runs``: a whole run by phase. The DiT sizes are :class:`fastvmt.backbones.architecture.DiTConfig` values.
"""

from fastvmt.costmodel.amf import AMFFlops, amf_flops
from fastvmt.costmodel.recipes import RECIPES, RELEASE_GUIDANCE_BLOCKS, GuidanceRecipe
from fastvmt.costmodel.runs import PHASES, RunCost, Sampling, run_cost
from fastvmt.costmodel.wan import Depth, backward_flops, forward_flops

__all__ = [
    "AMFFlops",
    "Depth",
    "GuidanceRecipe",
    "PHASES",
    "RECIPES",
    "RELEASE_GUIDANCE_BLOCKS",
    "RunCost",
    "Sampling",
    "amf_flops",
    "backward_flops",
    "forward_flops",
    "run_cost",
]
