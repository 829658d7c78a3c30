"""The motion-transfer pipeline: guided flow-matching sampling on a backbone (docs/algorithm.md#guided-sampling).

>>> pipe = MotionTransferPipeline.from_pretrained("Wan2.1-T2V-1.3B", strategy="fastvmt")  # doctest: +SKIP
>>> result = pipe(reference_frames, "a red car drives along a coastal road")  # doctest: +SKIP
>>> result.frames.shape  # (T, H, W, 3) uint8  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from fastvmt import plugins
from fastvmt.backbones import RECOMMENDED_RUN
from fastvmt.backends.dispatch import use_backend
from fastvmt.generation.denoising import decode_frames, denoise_step, step_cache
from fastvmt.generation.embeddings import AttentionControl, guide_rope
from fastvmt.generation.finite import check_finite
from fastvmt.generation.guidance import GuidanceStep, guide_latents
from fastvmt.generation.motion_check import check_motion
from fastvmt.generation.motion_file import MotionEmbeddings, backbone_signature, frames_digest
from fastvmt.generation.peak_memory import PeakMemoryMeter
from fastvmt.generation.readings import BackboneReader
from fastvmt.generation.report import PhaseTimer, RunReport
from fastvmt.generation.sampling import FlowMatchSchedule, add_noise, check_seed
from fastvmt.interfaces import Backbone, Motion, StepState, VideoGeometry, uses_cfg
from fastvmt.io.frames import frames_to_tensor
from fastvmt.strategies.components import build_components, resolve_strategy
from fastvmt.strategies.spec import Strategy, check_field

__all__ = ["DEFAULT_NEGATIVE_PROMPT", "MotionTransferPipeline", "TransferResult"]

#: Wan2.1's recommended negative prompt.
DEFAULT_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，"
    "丑陋，残缺，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，"
    "杂乱的背景，三条腿，背景人很多，倒着走"
)

log = logging.getLogger(__name__)

Callback = Callable[[StepState], "Tensor | None"]


@dataclass(frozen=True)
class TransferResult:
    """The generated video as ``(T, H, W, 3)`` uint8 frames, its final latents and the run's report; with the
    ``rope`` target, the motion embeddings it optimised (:func:`fastvmt.generation.motion_file.save_motion`)."""

    frames: np.ndarray
    latents: Tensor
    report: RunReport
    motion: MotionEmbeddings | None = None


@dataclass(frozen=True)
class _Run:
    """The checked inputs of one call."""

    video: Tensor
    prompt: str
    negative_prompt: str
    geometry: VideoGeometry
    schedule: FlowMatchSchedule
    cfg: float
    seed: int
    start: Tensor | None


class MotionTransferPipeline:
    """Generates a video that follows a prompt in content and a reference video in motion.

    Args:
        backbone: the video diffusion transformer (e.g. ``WanBackbone.from_pretrained(...)``).
        strategy: a registered preset name (``fastvmt``, ``ditflow``, ``no_transfer``, plugins') or a Strategy.
        backend: the AMF backend for every op of the run (``None``: automatic).
    """

    def __init__(self, backbone: Backbone, strategy: str | Strategy = "fastvmt", backend: str | None = None):
        self.backbone = backbone
        self.strategy = resolve_strategy(strategy)
        self.components = build_components(self.strategy)
        self.strategy.check_block(backbone.num_blocks)
        AttentionControl.check(backbone, self.strategy, self.components)
        if self.strategy.step_cache is not None:
            backbone.step_cache(self.strategy.step_cache, 1)  # a backbone without coefficients fails here
        self.backend = backend

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str,
        *,
        strategy: str | Strategy = "fastvmt",
        backbone: str = "wan",
        backend: str | None = None,
        **backbone_options: Any,
    ) -> MotionTransferPipeline:
        """Load a registered backbone from a local checkpoint directory and wrap it."""
        resolve_strategy(strategy)  # unknown names fail before loading gigabytes
        backbone_class = plugins.get("backbone", backbone)
        if not hasattr(backbone_class, "from_pretrained"):
            raise TypeError(
                f"backbone {backbone!r} loads no checkpoint; build it and wrap it: "
                f"MotionTransferPipeline({backbone_class.__name__}(), strategy)"
            )
        return cls(backbone_class.from_pretrained(model_dir, **backbone_options), strategy, backend)

    def _check_inputs(self, video: Tensor, prompt: str, num_frames, height, width) -> VideoGeometry:
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("prompt must be a non-empty text describing the video to generate")
        t, _, h, w = video.shape
        for name, wanted, actual in (("num_frames", num_frames, t), ("height", height, h), ("width", width, w)):
            if wanted is not None and wanted != actual:
                raise ValueError(
                    f"{name}={wanted} but the reference video has {actual}; load it resized with "
                    f"fastvmt.io.read_video(path, num_frames=..., height=..., width=...)"
                )
        geometry = self.backbone.geometry(t, h, w)
        if self.components is not None:
            self.components.extractor.check(geometry.grid)
        return geometry

    def __call__(
        self,
        reference_video: Any,
        prompt: str,
        *,
        negative_prompt: str = DEFAULT_NEGATIVE_PROMPT,
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = RECOMMENDED_RUN.num_steps,
        denoising_strength: float | None = None,
        cfg_scale: float | None = None,
        seed: int = 42,
        latents: Tensor | None = None,
        callbacks: Sequence[Callback] = (),
        progress: bool = True,
        image: Any = None,
    ) -> TransferResult:
        """Run motion transfer.

        Args:
            reference_video: ``(T, H, W, 3)`` uint8 frames; T = 4k+1, H and W multiples of 16.
            prompt: what the generated video shows; ``negative_prompt`` steers classifier-free guidance away.
            num_frames, height, width: optional expectations checked against the reference video.
            num_inference_steps: denoising steps; the strategy's scheduler guides the first of those that run (all,
                or about ``strength * num_inference_steps`` with the strategy's ``strength_semantics="truncate"``).
            denoising_strength, cfg_scale: override the strategy's values.
            seed: seeds the start noise and the reference's noise (CPU generator: same result on any device).
            latents: start from these latents instead of the noised reference (shape of the latent video).
            callbacks: called after every step with a :class:`StepState`; may return replacement latents.
            progress: show a progress bar.
            image: the first frame of an image-to-video backbone (``takes_image``): an ``(H, W, 3)`` uint8 array, a
                PIL image or an image file, centre-cropped and resized to the video's size. Without it such a backbone
                takes the reference's first frame, and the report's notes say so; a text-to-video backbone refuses it.
        """
        strategy = self.strategy
        video = frames_to_tensor(reference_video)
        geometry = self._check_inputs(video, prompt, num_frames, height, width)
        strength = strategy.denoising_strength if denoising_strength is None else denoising_strength
        schedule = FlowMatchSchedule.wan(num_inference_steps, shift=strategy.shift, denoising_strength=strength,
                                         strength_semantics=strategy.strength_semantics)
        if latents is not None and tuple(latents.shape) != geometry.latent_shape:
            raise ValueError(f"latents must have shape {geometry.latent_shape}, got {tuple(latents.shape)}")
        cfg = strategy.cfg_scale if cfg_scale is None else check_field("cfg_scale", cfg_scale)
        seed = check_seed(seed)
        first_frame, first_frame_note = self.first_frame(image, video, geometry)
        report = RunReport(
            config={
                "strategy": strategy.to_dict(),
                "prompt": prompt,
                "negative_prompt": negative_prompt,
                "num_frames": geometry.num_frames,
                "height": geometry.height,
                "width": geometry.width,
                "num_inference_steps": num_inference_steps,
                "denoising_strength": strength,
                "cfg_scale": cfg,
                "backend": self.backend or "auto",
            },
            seed=seed,
        )
        if first_frame_note is not None:
            log.info(first_frame_note)
            report.notes.append(first_frame_note)
        run = _Run(video, prompt, negative_prompt, geometry, schedule, cfg, seed, latents)
        with use_backend(self.backend) if self.backend else contextlib.nullcontext():
            before = _expert_calls(self.backbone)
            with self.conditioned_on(first_frame, geometry):
                frames, final_latents, control = self._sample(run, callbacks, progress, report)
            if before is not None:
                after = _expert_calls(self.backbone)
                report.experts = {kind: {name: count - before[kind].get(name, 0) for name, count in calls.items()}
                                  for kind, calls in after.items()}
        motion = None
        if control.rope:
            motion = MotionEmbeddings(
                angles=torch.stack(control.saved) if control.saved else torch.zeros(0, *control.angles.shape),
                guided_steps=tuple(control.guided_steps), sigmas=schedule.sigmas,
                backbone=backbone_signature(self.backbone),
                video={"num_frames": geometry.num_frames, "height": geometry.height, "width": geometry.width,
                       "grid": [geometry.grid.frames, geometry.grid.height, geometry.grid.width]},
                sampling={"num_inference_steps": num_inference_steps, "denoising_strength": strength,
                          "cfg_scale": cfg, "negative_prompt": negative_prompt, "seed": seed, "prompt": prompt},
                strategy=strategy.to_dict(), reference={"sha256": frames_digest(video)}, versions=report.versions,
            )
        return TransferResult(frames=frames, latents=final_latents, report=report, motion=motion)

    def transfer_motion(
        self,
        motion: MotionEmbeddings,
        prompt: str,
        *,
        negative_prompt: str | None = None,
        num_inference_steps: int | None = None,
        cfg_scale: float | None = None,
        seed: int = 42,
        callbacks: Sequence[Callback] = (),
        progress: bool = True,
        image: Any = None,
    ) -> TransferResult:
        """Sample ``prompt`` with saved motion embeddings (:func:`fastvmt.generation.motion_file.load_motion`) in
        effect at their guided steps: no reference, no guidance, no gradient. The schedule is this pipeline's
        strategy's at ``num_inference_steps`` (default: the file's); ``MotionFileError`` unless the file was made for
        this backbone, video size and schedule. ``negative_prompt`` and ``cfg_scale`` default to the file's. An
        image-to-video backbone needs the first frame, ``image`` (as in :meth:`__call__`; there is no reference to
        take it from)."""
        from fastvmt.generation.motion_replay import sample_with_motion

        return sample_with_motion(self, motion, prompt, negative_prompt=negative_prompt,
                                  num_inference_steps=num_inference_steps, cfg_scale=cfg_scale, seed=seed,
                                  callbacks=callbacks, progress=progress, image=image)

    def first_frame(self, image: Any, video: Tensor | None,
                    geometry: VideoGeometry) -> tuple[Tensor | None, str | None]:
        """The first frame ``(3, H, W)`` in [-1, 1] an image-to-video backbone is conditioned on, and a note when it
        is the reference's (``video``; ``None`` without a reference, then ``image`` is needed); ``(None, None)`` for
        a text-to-video backbone (``ValueError`` if given an image)."""
        from fastvmt.io.image import fit_image, read_image

        if not self.backbone.takes_image:
            if image is not None:
                raise ValueError(
                    f"this backbone ({type(self.backbone).__name__}) generates from text alone and takes no image; "
                    "image-to-video transfer needs an image-to-video checkpoint such as Wan2.1-I2V-14B-480P"
                )
            return None, None
        if image is None:
            return video[0], "no image given: the image-to-video backbone is conditioned on the reference's first frame"
        height, width = geometry.height, geometry.width
        fitted = read_image(image, height, width) if isinstance(image, (str, Path)) else fit_image(image, height, width)
        return frames_to_tensor(fitted.frame[None])[0], None

    @contextlib.contextmanager
    def conditioned_on(self, first_frame: Tensor | None, geometry: VideoGeometry):
        """Every DiT pass inside reads the first frame's conditioning (none for a text-to-video backbone)."""
        if first_frame is None:
            yield
            return
        backbone = self.backbone
        with torch.no_grad():
            conditioning = backbone.encode_image(first_frame.to(backbone.device), geometry.num_frames)
        with backbone.conditioned_on(conditioning):
            yield

    def _sample(self, run: _Run, callbacks: Sequence[Callback], progress: bool, report: RunReport):
        backbone, strategy, components, counts = self.backbone, self.strategy, self.components, report.counts
        schedule, cfg = run.schedule, run.cfg
        timer = PhaseTimer(backbone.device)
        memory = PeakMemoryMeter(backbone.device)
        dtype, device = backbone.dtype, backbone.device
        with timer.phase("encode"), torch.no_grad():
            context = backbone.encode_prompt(run.prompt)
            negative = backbone.encode_prompt(run.negative_prompt) if uses_cfg(cfg) else None
            empty = backbone.encode_prompt("") if components is not None else None
            reference_latents = backbone.encode_video(run.video.to(device)).to(dtype)
        check_finite(reference_latents, "the reference video's latents")
        generator = torch.Generator("cpu").manual_seed(run.seed)
        start_noise = torch.randn(run.geometry.latent_shape, generator=generator).to(device, dtype)
        reference_noise = torch.randn(run.geometry.latent_shape, generator=generator).to(device, dtype)
        if run.start is not None:
            x = run.start.to(device, dtype)
        else:
            x = add_noise(reference_latents, start_noise, schedule.sigmas[0])
        start, reader = x, BackboneReader(backbone, strategy.block, counts, strategy.guidance_checkpointing)
        num_steps = len(schedule)
        guided_steps = [k for k in range(num_steps) if components and components.scheduler.is_guided(k, num_steps)]
        control = AttentionControl(backbone, strategy, run.geometry.grid, guided_steps)
        last_guided = max(guided_steps, default=-1)
        cache = step_cache(backbone, strategy.step_cache, num_steps - 1 - last_guided)
        reference: tuple[Motion, Any] | None = None
        bar = tqdm(total=num_steps, disable=not progress, desc=f"fastvmt {strategy.name}", unit="step")
        with bar:
            for k in range(num_steps):
                timestep, loss = schedule.timestep(k), None
                if k in guided_steps:
                    if reference is None or strategy.reference != "once":
                        with timer.phase("reference_features"):
                            noise = _reference_noise(strategy.reference, reference_noise, generator)
                            reference = self._reference_motion(reader, reference_latents, noise, schedule.sigmas[k],
                                                               timestep, empty)
                    with timer.phase("reference_features"):
                        control.read_reference_kv(reader, reference_latents, start_noise, schedule.sigmas[k], timestep,
                                                  context)
                    step = GuidanceStep(k, num_steps, guided_steps.index(k), len(guided_steps), timestep,
                                        schedule.sigmas[k], *reference, start=start, start_sigma=schedule.sigmas[0])
                    guide = {"reader": reader, "components": components, "strategy": strategy, "context": context,
                             "negative": negative, "cfg_scale": cfg}
                    with timer.phase("guidance"):
                        if control.rope:
                            losses = guide_rope(control, x, step, **guide)
                        else:
                            with control.injecting(counts):
                                x, losses = guide_latents(x, step, **guide)
                    check_finite(x, "the latents after guidance", step=k, num_steps=num_steps)
                    report.losses.extend({"step": k, **parts} for parts in losses)
                    loss = losses[-1]["total"] if losses else None
                    counts.guided_steps += 1
                in_effect = control.guided(counts) if k in guided_steps else contextlib.nullcontext()
                with timer.phase("denoise"), torch.no_grad(), in_effect:
                    x, passes = denoise_step(backbone, schedule, x, k, context, negative, cfg,
                                             cache if k > last_guided else None)  # never a guided step's velocity
                if k in guided_steps:
                    control.finish_step()
                counts.steps += 1
                counts.blocks_forward += backbone.num_blocks * passes
                x = self._run_callbacks(callbacks, x, k, num_steps, timestep, schedule.sigmas[k], loss,
                                        k in guided_steps, counts)
                if callbacks:
                    check_finite(x, "the latents after the callbacks", step=k, num_steps=num_steps)
                bar.set_postfix(loss="-" if loss is None else f"{loss:.4g}",
                                grads=f"{counts.gradients_computed}c/{counts.gradients_reused}r")
                bar.update()
        frames = decode_frames(backbone, x, timer)
        report.peak_memory = memory.read()
        report.step_cache = cache.summary() if cache is not None else None
        with timer.phase("motion_check"):
            report.motion_check = check_motion(backbone, reference_latents, x, run.video, frames,
                                               block=strategy.block, counts=counts, empty_context=empty)
        report.seconds = dict(timer.seconds)
        return frames, x, control

    def _reference_motion(self, reader, reference_latents, noise, sigma, timestep, empty):
        """Reference motion and extractor state, from what the extractor reads (with the empty prompt, no CFG) of
        the reference latent noised with ``noise`` to ``sigma`` at ``timestep``, or of the clean latent at timestep
        0 when ``noise`` is None."""
        if noise is None:
            latents, sigma, timestep = reference_latents, 0.0, 0.0
        else:
            latents = add_noise(reference_latents, noise, sigma)
        extractor = self.components.extractor
        with torch.no_grad():
            readings = reader.read(extractor.reads, latents, sigma=sigma, timestep=timestep, context=empty)
            reading = readings.input_for(extractor.reads)
            state = extractor.fit(reading)
            motion = extractor.extract(reading, state, reference=True)
        return motion, state

    @staticmethod
    def _run_callbacks(callbacks, x, k, num_steps, timestep, sigma, loss, guided, counts):
        for callback in callbacks:
            state = StepState(k, num_steps, timestep, sigma, x, guided, loss, counts.gradients_computed,
                              counts.gradients_reused)
            replacement = callback(state)
            if replacement is not None:
                if replacement.shape != x.shape:
                    raise ValueError(f"callback returned latents of shape {tuple(replacement.shape)}, "
                                     f"expected {tuple(x.shape)}")
                x = replacement.to(x.device, x.dtype)
        return x


def _expert_calls(backbone: Backbone) -> dict[str, dict[str, int]] | None:
    """The calls each expert of a mixture-of-experts backbone (Wan2.2 A14B) has served, by kind of call; None for a
    backbone of one DiT."""
    calls = getattr(backbone, "expert_calls", None)
    return None if calls is None else {kind: dict(counts) for kind, counts in calls.items()}


def _reference_noise(mode: str, noise: Tensor, generator: torch.Generator) -> Tensor | None:
    """The noise of a guided step's reference (docs/algorithm.md#guided-sampling): the run's reference noise
    (``per_step``), a new draw from the run's generator (``per_step_fresh``), none: the clean latent (``once``)."""
    if mode == "once":
        return None
    if mode == "per_step":
        return noise
    return torch.randn(noise.shape, generator=generator).to(noise.device, noise.dtype)
