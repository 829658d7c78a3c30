"""The motion check of every run: how far the output's motion is from the reference's.

After sampling, the pipeline measures the output the way the reference is measured: an early-exit forward of its
final latent at timestep 0 with the empty prompt, features captured at the strategy's block, and the dense soft
AMF of those features (:class:`~fastvmt.strategies.extractors.DenseAMFExtractor` with its defaults, the paper's
parameters: ``mean_qk`` heads, span 4, tau 1, forward pairs). The reference's clean latent gets the same. The
check reports

- ``amf_epe``: the end-point error between the two flows (:func:`fastvmt.metrics.amf_end_point_error`: mean over
  frame pairs and tokens of the displacement difference's length, in tokens; 0 for the same flow);
- ``motion_fidelity``: the LK motion fidelity of the decoded video to the reference (:mod:`fastvmt.metrics`,
  the defaults of ``fastvmt eval``), or in ``motion_fidelity_error`` why there is none (OpenCV not installed,
  a video the tracker cannot follow).

The measurement does not depend on the strategy's extractor, so every strategy, ``no_transfer`` (the baseline)
included, is measured alike. Its cost is two early-exit forwards (the reference's and the output's), counted in
the report's ``blocks_forward``, and one LK tracking of both videos.

:class:`MotionCheckCallback` records the same end-point error at each guided step of a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from fastvmt.interfaces import Backbone, MotionField, StepState
from fastvmt.metrics.amf_error import amf_end_point_error

if TYPE_CHECKING:
    from fastvmt.generation.pipeline import MotionTransferPipeline
    from fastvmt.generation.report import RunCounts
    from fastvmt.metrics import MotionFidelity

__all__ = ["MotionCheck", "MotionCheckCallback", "MotionProbe", "check_motion"]

#: The timestep at which latents are measured: as clean videos.
CHECK_TIMESTEP = 0.0


class MotionProbe:
    """The check's measurement: the dense soft AMF of latents (timestep 0, empty prompt, features of ``block``)
    and its end-point error to the reference's, whose AMF is computed on first use.

    Args:
        backbone: the backbone that measures.
        reference_latents: the reference video's clean latents, in the backbone's dtype.
        block: the DiT block whose self-attention features give the AMF.
        empty_context: the empty prompt's encoding, if already at hand.
    """

    def __init__(self, backbone: Backbone, reference_latents: Tensor, *, block: int,
                 empty_context: Tensor | None = None):
        from fastvmt.strategies.extractors import DenseAMFExtractor

        self.backbone, self.block = backbone, block
        self.reference_latents = reference_latents
        self.extractor = DenseAMFExtractor()
        self._empty = empty_context
        self._reference: MotionField | None = None
        self.forwards = 0

    def motion(self, latents: Tensor) -> MotionField:
        """The AMF of ``latents`` (no gradient)."""
        with torch.no_grad():
            if self._empty is None:
                self._empty = self.backbone.encode_prompt("")
            features = self.backbone.features(latents.to(self.backbone.dtype), CHECK_TIMESTEP, self._empty,
                                              block=self.block)
            self.forwards += 1
            return self.extractor.extract(features, reference=True)

    @property
    def reference(self) -> MotionField:
        """The reference's AMF."""
        if self._reference is None:
            self._reference = self.motion(self.reference_latents)
        return self._reference

    def end_point_error(self, latents: Tensor) -> float:
        """AMF end-point error of ``latents`` to the reference, in tokens."""
        return amf_end_point_error(self.reference, self.motion(latents))


@dataclass(frozen=True)
class MotionCheck:
    """A run's motion check (see the module docstring). ``blocks_forward`` is what its forwards cost."""

    amf_epe: float
    block: int
    blocks_forward: int
    motion_fidelity: MotionFidelity | None
    motion_fidelity_error: str | None = None

    def summary(self) -> str:
        """One line: the end-point error and the motion fidelity (or why there is none)."""
        fidelity = (f"LK motion fidelity {self.motion_fidelity.score:.4f}" if self.motion_fidelity is not None
                    else f"no motion fidelity: {self.motion_fidelity_error}")
        return (f"motion check: AMF end-point error {self.amf_epe:.4f} tokens (output vs reference, block "
                f"{self.block}); {fidelity}")


def _lk_fidelity(reference_video: Any, output_frames: Any) -> tuple[MotionFidelity | None, str | None]:
    from fastvmt.metrics import evaluate_motion_fidelity

    try:
        return evaluate_motion_fidelity(reference_video, output_frames), None
    except (ImportError, ValueError) as error:  # OpenCV missing, a video the tracker cannot follow
        return None, str(error)


def check_motion(backbone: Backbone, reference_latents: Tensor, output_latents: Tensor, reference_video: Any,
                 output_frames: Any, *, block: int, counts: RunCounts,
                 empty_context: Tensor | None = None) -> MotionCheck:
    """The motion check of a finished run; adds its forwards to ``counts.blocks_forward``.

    ``reference_video`` and ``output_frames`` are the videos as :func:`fastvmt.metrics.as_uint8_video` takes
    them (uint8 ``(T, H, W, 3)`` or float ``(T, 3, H, W)`` in [-1, 1]).
    """
    probe = MotionProbe(backbone, reference_latents, block=block, empty_context=empty_context)
    epe = probe.end_point_error(output_latents)
    blocks = probe.forwards * (block + 1)
    counts.blocks_forward += blocks
    fidelity, error = _lk_fidelity(reference_video, output_frames)
    return MotionCheck(epe, block, blocks, fidelity, error)


class MotionCheckCallback:
    """A pipeline callback recording the motion check's AMF end-point error at each guided step.

    Each record is ``{"step": k, "sigma": sigma_k, "amf_epe": e}``, for the latents after denoising step ``k``,
    measured like the run's final check (timestep 0, empty prompt, the strategy's block). With ``every_step``
    it records every step; its last record is then the run's own check. Its cost, not counted in the run's
    report: encoding the reference once, then one early-exit forward per record plus one for the reference.

    >>> check = MotionCheckCallback(pipe, reference_frames)  # doctest: +SKIP
    >>> pipe(reference_frames, "a fox runs", callbacks=[check])  # doctest: +SKIP
    >>> [record["amf_epe"] for record in check.records]  # doctest: +SKIP

    Args:
        pipeline: the pipeline the callback is given to (its backbone and strategy's block).
        reference_video: the reference frames the pipeline is called with, ``(T, H, W, 3)`` uint8.
        every_step: record every denoising step, not only the guided ones.
    """

    def __init__(self, pipeline: MotionTransferPipeline, reference_video: Any, *, every_step: bool = False):
        from fastvmt.io.frames import frames_to_tensor

        backbone = pipeline.backbone
        with torch.no_grad():
            latents = backbone.encode_video(frames_to_tensor(reference_video).to(backbone.device))
        self.probe = MotionProbe(backbone, latents.to(backbone.dtype), block=pipeline.strategy.block)
        self.every_step = every_step
        self.records: list[dict[str, float]] = []

    def __call__(self, state: StepState) -> None:
        if state.guided or self.every_step:
            self.records.append({"step": state.step, "sigma": float(state.sigma),
                                 "amf_epe": self.probe.end_point_error(state.latents)})
