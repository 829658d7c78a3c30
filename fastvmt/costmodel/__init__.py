"""FLOP cost model of whole guided generations on Wan2.1 (``fastvmt bench cost``).

``wan``: one DiT pass by formula; ``amf``: the motion-extraction ops; ``recipes``: what is counted of a
strategy; ``runs``: a whole run by phase; ``levers``: each speed lever alone and all together. The DiT sizes
are :class:`fastvmt.backbones.architecture.DiTConfig` values.
"""

from fastvmt.costmodel.amf import AMFFlops, amf_flops
from fastvmt.costmodel.levers import LEVERS, lever_costs
from fastvmt.costmodel.recipes import RECIPES, RELEASE_GUIDANCE_BLOCKS, GuidanceRecipe
from fastvmt.costmodel.runs import PHASES, STEP_CACHE_SKIP, RunCost, Sampling, run_cost
from fastvmt.costmodel.wan import Depth, backward_flops, forward_flops

__all__ = [
    "AMFFlops",
    "Depth",
    "GuidanceRecipe",
    "LEVERS",
    "PHASES",
    "RECIPES",
    "RELEASE_GUIDANCE_BLOCKS",
    "RunCost",
    "STEP_CACHE_SKIP",
    "Sampling",
    "amf_flops",
    "backward_flops",
    "forward_flops",
    "lever_costs",
    "run_cost",
]
