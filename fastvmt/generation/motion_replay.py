"""Sampling a prompt with saved motion embeddings (docs/algorithm.md#motion-embeddings): the run of a motion file's
schedule from the seed's noise, each guided step's RoPE angle offsets in effect at that step, and the strategy's
step cache after the last of them, as in the run that saved the motion. No reference is read, no guidance
computed: the cost of plain sampling."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from fastvmt.backbones.injection import attention_dit, rope_offset
from fastvmt.generation.denoising import decode_frames, denoise_step, step_cache
from fastvmt.generation.finite import check_finite
from fastvmt.generation.motion_file import MotionEmbeddings, MotionFileError
from fastvmt.generation.peak_memory import PeakMemoryMeter
from fastvmt.generation.report import PhaseTimer, RunReport
from fastvmt.generation.sampling import FlowMatchSchedule, check_seed
from fastvmt.interfaces import uses_cfg
from fastvmt.strategies.spec import check_field

if TYPE_CHECKING:
    from fastvmt.generation.pipeline import (
        Callback,
        MotionTransferPipeline,
        TransferResult,
    )

__all__ = ["sample_with_motion"]


def sample_with_motion(
    pipeline: MotionTransferPipeline,
    motion: MotionEmbeddings,
    prompt: str,
    *,
    negative_prompt: str | None,
    num_inference_steps: int | None,
    cfg_scale: float | None,
    seed: int,
    callbacks: Sequence[Callback],
    progress: bool,
    image: Any = None,
) -> TransferResult:
    """What :meth:`MotionTransferPipeline.transfer_motion` runs (its docstring says the options)."""
    from fastvmt.generation.pipeline import TransferResult

    backbone, strategy = pipeline.backbone, pipeline.strategy
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("prompt must be a non-empty text describing the video to generate")
    steps = motion.sampling.get("num_inference_steps") if num_inference_steps is None else num_inference_steps
    schedule = FlowMatchSchedule.wan(steps, shift=strategy.shift, denoising_strength=strategy.denoising_strength,
                                     strength_semantics=strategy.strength_semantics)
    video = motion.video
    geometry = backbone.geometry(video["num_frames"], video["height"], video["width"])
    motion.check_compatible(backbone, geometry.grid, schedule.sigmas)
    if schedule.sigmas[0] != 1.0:
        raise MotionFileError(f"the motion file's schedule starts at sigma {schedule.sigmas[0]:.6g}; a motion file is "
                              "replayed from pure noise (sigma 1)")
    dit = attention_dit(backbone, "sampling with a motion file")
    if backbone.takes_image and image is None:
        raise ValueError(f"this image-to-video backbone ({type(backbone).__name__}) needs the first frame to sample "
                         "with a motion file: pass image= (--image)")
    first_frame, _ = pipeline.first_frame(image, None, geometry)  # None for a text-to-video backbone
    cfg = check_field("cfg_scale", motion.sampling.get("cfg_scale", 1.0) if cfg_scale is None else cfg_scale)
    negative_prompt = motion.sampling.get("negative_prompt", "") if negative_prompt is None else negative_prompt
    seed = check_seed(seed)
    report = RunReport(
        config={"strategy": strategy.to_dict(), "prompt": prompt, "negative_prompt": negative_prompt,
                "num_frames": geometry.num_frames, "height": geometry.height, "width": geometry.width,
                "num_inference_steps": steps, "denoising_strength": strategy.denoising_strength, "cfg_scale": cfg,
                "backend": pipeline.backend or "auto",
                "motion": {"guided_steps": list(motion.guided_steps), "reference": dict(motion.reference),
                           "made_with": dict(motion.sampling)}},
        seed=seed,
    )
    counts, timer, memory = report.counts, PhaseTimer(backbone.device), PeakMemoryMeter(backbone.device)
    device, dtype = backbone.device, backbone.dtype
    with timer.phase("encode"), torch.no_grad():
        context = backbone.encode_prompt(prompt)
        negative = backbone.encode_prompt(negative_prompt) if uses_cfg(cfg) else None
    # The first draw of the seed's generator: the start noise of the run that saved the motion.
    generator = torch.Generator("cpu").manual_seed(seed)
    x = torch.randn(geometry.latent_shape, generator=generator).to(device, dtype)
    angles = dict(zip(motion.guided_steps, motion.angles.to(device)))
    # The strategy's step cache after the last guided step, as in the run that saved the motion.
    last_guided = max(motion.guided_steps, default=-1)
    unguided = len(schedule) - 1 - last_guided
    cache = step_cache(backbone, strategy.step_cache, unguided)
    with tqdm(total=len(schedule), disable=not progress, desc="fastvmt motion", unit="step") as bar, \
            pipeline.conditioned_on(first_frame, geometry):
        for k in range(len(schedule)):
            with timer.phase("denoise"), torch.no_grad(), rope_offset(dit, angles.get(k)):
                x, passes = denoise_step(backbone, schedule, x, k, context, negative, cfg,
                                         cache if k > last_guided else None)
            counts.steps += 1
            counts.blocks_forward += backbone.num_blocks * passes
            x = pipeline._run_callbacks(callbacks, x, k, len(schedule), schedule.timestep(k), schedule.sigmas[k], None,
                                        k in angles, counts)
            if callbacks:
                check_finite(x, "the latents after the callbacks", step=k, num_steps=len(schedule))
            bar.update()
    frames = decode_frames(backbone, x, timer)
    report.peak_memory = memory.read()
    report.seconds = dict(timer.seconds)
    report.step_cache = cache.summary() if cache is not None else None
    return TransferResult(frames=frames, latents=x, report=report)
