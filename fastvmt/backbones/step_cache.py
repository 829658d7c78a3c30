"""The step cache of the denoising after the last guided step: diffsynth's TeaCache (docs/algorithm.md#step-cache).

diffsynth's ``TeaCache`` decides at every DiT forward, from the relative change of the timestep modulation since the
last forward rescaled by a polynomial fitted per released model, whether the forward may reuse the residual its
blocks added last time instead of running them; it always runs the first and the last of its ``num_steps`` calls.
fastvmt runs it unchanged: one cache per classifier-free-guidance branch (one for a merged batch), created per run.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import Tensor, nn

__all__ = ["TEACACHE_MODEL_IDS", "BranchCache", "StepCache", "coefficients_model_id"]

#: diffsynth's TeaCache model ids of the released text-to-video DiTs, by their ``RELEASED_DITS`` name.
TEACACHE_MODEL_IDS = {"1.3B": "Wan2.1-T2V-1.3B", "14B": "Wan2.1-T2V-14B"}


def _tea_cache(num_steps: int, threshold: float, model_id: str):
    from diffsynth.pipelines.wan_video import TeaCache

    return TeaCache(num_steps, rel_l1_thresh=threshold, model_id=model_id)


def coefficients_model_id(dit: nn.Module, borrowed: str | None = None) -> str:
    """diffsynth's TeaCache model id for ``dit`` (a ``WanModel``): ``borrowed`` when given (checked against
    diffsynth's list), else the released DiT whose sizes ``dit`` has; ``ValueError`` for a DiT of no released
    size, whose coefficients nobody fitted."""
    from fastvmt.backbones.architecture import RELEASED_DITS

    if borrowed is not None:
        _tea_cache(1, 1.0, borrowed)  # diffsynth's ValueError lists its ids
        return borrowed
    if dit.patch_embedding.in_channels != dit.head.head.out_features // math.prod(dit.patch_size):
        raise ValueError(
            "the step cache needs TeaCache coefficients fitted to the DiT, and this image-to-video DiT's are "
            "diffsynth's 'Wan2.1-I2V-14B-480P' or 'Wan2.1-I2V-14B-720P' (its weights, not its shapes, tell which): "
            "pass one as WanBackbone.from_pretrained(teacache_model_id=...), or turn the step cache off"
        )
    sizes = (dit.dim, dit.blocks[0].ffn[0].out_features, dit.blocks[0].self_attn.num_heads, len(dit.blocks))
    for name, config in RELEASED_DITS.items():
        if sizes == (config.dim, config.ffn_dim, config.num_heads, config.num_layers):
            return TEACACHE_MODEL_IDS[name]
    raise ValueError(
        f"the step cache needs TeaCache coefficients fitted to the DiT, and this one (dim {sizes[0]}, FFN "
        f"{sizes[1]}, {sizes[2]} heads, {sizes[3]} blocks) matches no released Wan2.1 T2V DiT "
        f"({', '.join(TEACACHE_MODEL_IDS.values())}); turn the step cache off, or borrow a model's coefficients "
        "explicitly with WanBackbone(teacache_model_id=...)"
    )


class BranchCache:
    """One diffsynth TeaCache over ``num_steps`` forwards, counting the forwards it computed and cached."""

    def __init__(self, num_steps: int, threshold: float, model_id: str):
        self.tea_cache = _tea_cache(num_steps, threshold, model_id)
        self.computed = 0
        self.cached = 0

    def blocks(self, dit: nn.Module, x: Tensor, t_mod: Tensor, run_blocks: Callable[[Tensor], Tensor]) -> Tensor:
        """``run_blocks(x)`` (tokens ``(b, s, dim)``), or ``x`` plus the residual the blocks added last time when
        TeaCache judges the modulation ``t_mod`` close enough to the last one's."""
        if self.tea_cache.check(dit, x, t_mod):
            self.cached += 1
            return self.tea_cache.update(x)
        self.computed += 1
        out = run_blocks(x)
        self.tea_cache.store(out)
        return out


class StepCache:
    """One run's step cache over its ``num_steps`` unguided denoising steps: a :class:`BranchCache` per CFG branch
    (``"positive"``, ``"negative"``, or ``"merged"`` for both in one batch), created on first use."""

    def __init__(self, threshold: float, num_steps: int, model_id: str):
        self.threshold, self.num_steps, self.model_id = threshold, num_steps, model_id
        self.branches: dict[str, BranchCache] = {}

    def branch(self, name: str) -> BranchCache:
        if name not in self.branches:
            self.branches[name] = BranchCache(self.num_steps, self.threshold, self.model_id)
        return self.branches[name]

    @property
    def passes_computed(self) -> int:
        """DiT passes the branches ran (a merged batch counts as two)."""
        return sum(b.computed * (2 if name == "merged" else 1) for name, b in self.branches.items())

    def summary(self) -> dict[str, object]:
        """What the run report records: threshold, coefficients, steps and per branch the forwards computed and
        cached."""
        return {
            "threshold": self.threshold,
            "model_id": self.model_id,
            "steps": self.num_steps,
            "branches": {name: {"computed": b.computed, "cached": b.cached} for name, b in self.branches.items()},
        }
