"""Wan2.2 T2V-A14B and I2V-A14B as fastvmt backbones: two Wan2.1-14B-shaped experts, for high and for low noise.

A DiT pass at ``timestep >= boundary * 1000`` runs the high-noise expert, one below it the low-noise expert
(T2V-A14B: 0.875, diffsynth's ``switch_DiT_boundary``; I2V-A14B: 0.900, Wan2.2's released configuration); the
velocity and the guidance features of a step come from the expert that serves its timestep (docs/algorithm.md#a14b).
I2V-A14B's experts take the first-frame channels of Wan2.1 image-to-video, without CLIP features. ``expert_calls``
counts the calls each expert served, by kind of call; the pipeline's report records a run's (``experts``).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float
from torch import Tensor, nn

from fastvmt.backbones.conditioning import FirstFrameConditioned, ImageConditioning
from fastvmt.backbones.families import WAN22_I2V_A14B, WAN22_T2V_A14B, WanFamily
from fastvmt.backbones.wan import WanBackbone

if TYPE_CHECKING:
    from pathlib import Path

    from fastvmt.backbones.checkpoint import CheckpointFiles

__all__ = ["A14B_BOUNDARY", "I2V_A14B_BOUNDARY", "WanA14BBackbone", "WanI2VA14BBackbone"]

#: The sigma where T2V-A14B hands over from the high-noise to the low-noise expert (diffsynth's
#: ``WanVideoPipeline.__call__(switch_DiT_boundary=0.875)``, Wan2.2's ``t2v_A14B.boundary``).
A14B_BOUNDARY = 0.875
#: I2V-A14B's (Wan2.2's ``i2v_A14B.boundary``; diffsynth takes it as the caller's ``switch_DiT_boundary``).
I2V_A14B_BOUNDARY = 0.900
HIGH_NOISE, LOW_NOISE = "high_noise", "low_noise"


class WanA14BBackbone(WanBackbone):
    """Wan2.2 T2V-A14B on diffsynth's networks: :class:`WanBackbone`'s arguments with ``dit`` the high-noise expert,
    plus ``low_noise_dit`` and the ``boundary`` sigma between them (default: the release's)."""

    #: The released boundary of the family.
    released_boundary = A14B_BOUNDARY

    def __init__(self, dit: nn.Module, vae: nn.Module, text_encoder: nn.Module, tokenizer: Any,
                 low_noise_dit: nn.Module, *, boundary: float | None = None, **options: Any):
        from fastvmt.backbones.modules import prepare
        from fastvmt.backbones.offload import default_vram_limit, enable_offload

        super().__init__(dit, vae, text_encoder, tokenizer, **options)
        boundary = self.released_boundary if boundary is None else boundary
        if not 0 < boundary < 1:
            raise ValueError(f"boundary is a sigma in (0, 1), got {boundary}")
        shapes = [(len(d.blocks), d.blocks[0].self_attn.num_heads, d.dim) for d in (dit, low_noise_dit)]
        if shapes[0] != shapes[1]:
            raise ValueError(f"the experts differ in (blocks, heads, width): high noise {shapes[0]}, low {shapes[1]}")
        self.boundary = boundary
        low_noise_dit = prepare(low_noise_dit, self.dtype)
        if self.offload is None:
            self.low_noise_dit = low_noise_dit.to(self.device)
        else:
            limit = options.get("vram_limit")
            if limit is None and self.device.type == "cuda":
                limit = default_vram_limit(self.device)
            self.low_noise_dit = enable_offload(low_noise_dit, self.device, self.dtype, limit)
        self.high_noise_dit = self.dit
        #: The velocity and the feature calls each expert served, since the backbone was made.
        self.expert_calls: dict[str, Counter[str]] = {"velocity": Counter(), "features": Counter()}

    @classmethod
    def _family(cls, model_dir: str | Path) -> WanFamily:
        return WAN22_T2V_A14B

    @classmethod
    def _load_family_networks(cls, files: CheckpointFiles, dtype: torch.dtype, device: torch.device) -> dict[str, Any]:
        from fastvmt.backbones import architecture as arch
        from fastvmt.backbones import checkpoint, modules

        folder = cls._family(files.root).dit_dirs[1]
        stored = checkpoint.read_config(files.root / folder / checkpoint.CONFIG_FILE
                                        if (files.root / folder / checkpoint.CONFIG_FILE).is_file() else None)
        state = modules.dit_state_dict(checkpoint.read_state_dict(files.experts[folder], dtype, device))
        config = arch.infer_dit_config({name: tuple(t.shape) for name, t in state.items()}, stored)
        dit = modules.build_dit(config)
        modules.load_weights(dit, state, "low-noise DiT")
        return {"low_noise_dit": dit}

    def expert(self, timestep: float) -> str:
        """Which expert serves ``timestep`` (``sigma * 1000``)."""
        return HIGH_NOISE if timestep >= self.boundary * 1000 else LOW_NOISE

    @contextlib.contextmanager
    def _serving(self, kind: str, timestep: float) -> Iterator[None]:
        """The expert of ``timestep`` in place of ``self.dit`` for one ``kind`` of call (counted)."""
        self._timestep(timestep)  # a bad timestep is refused before it picks an expert
        name = self.expert(timestep)
        self.dit = self.high_noise_dit if name == HIGH_NOISE else self.low_noise_dit
        self.expert_calls[kind][name] += 1
        try:
            yield
        finally:
            self.dit = self.high_noise_dit

    def step_cache(self, threshold: float, num_steps: int) -> Any:
        """Refused: TeaCache has no coefficients fitted to the A14B experts, and one cache would carry an expert's
        residual over to the other across the boundary."""
        raise ValueError(
            "the step cache (TeaCache) is not available on Wan2.2 A14B: no coefficients were fitted to its experts, "
            "and a cached residual must not cross from one expert to the other; turn it off (--set step_cache=null)"
        )

    def _use(self, module: nn.Module) -> None:
        if self.offload is not None and self._active is not module:
            from fastvmt.backbones.offload import activate

            activate((self.high_noise_dit, self.low_noise_dit, self.vae, self.text_encoder), module)
            self._active = module

    def velocity(self, latents: Tensor, timestep: float, *args: Any, **kwargs: Any) -> Tensor:
        with self._serving("velocity", timestep):
            return super().velocity(latents, timestep, *args, **kwargs)

    def features(self, latents: Tensor, timestep: float, *args: Any, **kwargs: Any) -> Any:
        with self._serving("features", timestep):
            return super().features(latents, timestep, *args, **kwargs)


class WanI2VA14BBackbone(FirstFrameConditioned, WanA14BBackbone):
    """Wan2.2 I2V-A14B: :class:`WanA14BBackbone` whose experts read a first frame on every pass (its first-frame
    channels as in Wan2.1 image-to-video, no CLIP features): :meth:`conditioned_on`."""

    released_boundary = I2V_A14B_BOUNDARY

    @classmethod
    def _family(cls, model_dir: str | Path) -> WanFamily:
        return WAN22_I2V_A14B

    def encode_image(self, image: Float[Tensor, "3 h w"], num_frames: int) -> ImageConditioning:
        """The first-frame channels of a ``num_frames``-frame video on ``image`` (in [-1, 1], at the video's size)."""
        from fastvmt.backbones.wan_i2v import masked_first_frame

        return ImageConditioning(first_frame=masked_first_frame(self, image, num_frames))

    def _require_conditioning(self) -> None:
        if self.image_conditioning is None:
            raise RuntimeError("I2V-A14B's experts read a first frame on every pass: run them inside "
                               "`with backbone.conditioned_on(backbone.encode_image(image, num_frames)):`")

    def velocity(self, latents: Tensor, timestep: float, *args: Any, **kwargs: Any) -> Tensor:
        self._require_conditioning()
        return super().velocity(latents, timestep, *args, **kwargs)

    def features(self, latents: Tensor, timestep: float, *args: Any, **kwargs: Any) -> Any:
        self._require_conditioning()
        return super().features(latents, timestep, *args, **kwargs)
