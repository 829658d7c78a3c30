"""The pipeline's side of the extractor contract (docs/algorithm.md#readings): reading from the backbone what an
extractor declares it consumes, and counting the DiT blocks every reading runs."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from fastvmt.generation.report import RunCounts
from fastvmt.interfaces import ATTENTION, PREDICTION, AttentionFeatures, Backbone, LatentPrediction, Readings, uses_cfg

__all__ = ["BackboneReader", "velocity_passes"]


def velocity_passes(cfg_scale: float) -> int:
    """DiT passes of one velocity: two with classifier-free guidance (``cfg_scale != 1``), else one."""
    return 2 if uses_cfg(cfg_scale) else 1


@dataclass(frozen=True)
class BackboneReader:
    """Reads attention features (of ``block``; with activation checkpointing when ``checkpointing``) and velocities
    from ``backbone``, adding the blocks run to ``counts.blocks_forward``."""

    backbone: Backbone
    block: int
    counts: RunCounts
    checkpointing: bool = False

    def features(self, latents: Float[Tensor, "1 c f h w"], timestep: float, context: Tensor) -> AttentionFeatures:
        """Q/K of the block, with the graph to ``latents`` when gradients are enabled (``block + 1`` blocks)."""
        # Asked for only when on, so a third-party backbone written before the option still serves plain runs.
        options = {"checkpointing": True} if self.checkpointing else {}
        features = self.backbone.features(latents.to(self.backbone.dtype), timestep, context, block=self.block,
                                          **options)
        self.counts.blocks_forward += self.block + 1
        return features

    def velocity(
        self,
        latents: Float[Tensor, "1 c f h w"],
        timestep: float,
        context: Tensor,
        negative: Tensor | None = None,
        cfg_scale: float = 1.0,
    ) -> Float[Tensor, "1 c f h w"]:
        """The (CFG) velocity of ``latents`` in float32, never with a graph through the DiT (whole-DiT passes)."""
        with torch.no_grad():
            velocity = self.backbone.velocity(
                latents.detach().to(self.backbone.dtype), timestep, context, negative, cfg_scale
            )
        self.counts.blocks_forward += self.backbone.num_blocks * velocity_passes(cfg_scale)
        return velocity.float()

    def read(
        self,
        reads: frozenset[str],
        latents: Float[Tensor, "1 c f h w"],
        *,
        sigma: float,
        timestep: float,
        context: Tensor,
        negative: Tensor | None = None,
        cfg_scale: float = 1.0,
        path_velocity: Tensor | None = None,
    ) -> Readings:
        """The readings ``reads`` asks for at ``latents`` (noise level ``sigma``): features with ``context``; the
        latent prediction with the CFG velocity, none needed at ``sigma = 0``."""
        attention = self.features(latents, timestep, context) if ATTENTION in reads else None
        prediction = None
        if PREDICTION in reads:
            velocity = self.velocity(latents, timestep, context, negative, cfg_scale) if sigma > 0 else None
            prediction = LatentPrediction(latents, sigma, velocity, path_velocity)
        return Readings(attention, prediction)
