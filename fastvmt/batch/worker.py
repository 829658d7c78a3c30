"""A batch worker: loads the backbone once, then runs jobs one after another, each writing its own folder.

The same class runs in-process (local executor) and as a Ray actor (one per GPU or CPU slot). A job's
exception is recorded in its ``error.json`` and the worker goes on; ``KeyboardInterrupt`` is not caught.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from fastvmt.batch.manifest import Job
from fastvmt.batch.results import JobOutcome, JobPaths, failure, worker_name
from fastvmt.batch.settings import BatchSettings, job_strategy

__all__ = ["JobWorker"]

log = logging.getLogger(__name__)

#: Backbones this process has loaded for batches (reported with each outcome: 1 when a worker loads once).
_MODEL_LOADS = 0


class JobWorker:
    """Holds one loaded backbone and runs jobs on it (a pipeline per strategy, built on the same backbone)."""

    def __init__(self, settings: BatchSettings):
        global _MODEL_LOADS
        import torch

        from fastvmt import plugins

        if settings.threads is not None:
            torch.set_num_threads(settings.threads)
        self.settings = settings
        self.name = worker_name()
        start = time.perf_counter()
        self.backbone = plugins.get("backbone", "wan").from_pretrained(settings.model_dir,
                                                                      **settings.backbone_options())
        _MODEL_LOADS += 1
        log.info("worker %s loaded %s in %.1f s", self.name, settings.model_dir, time.perf_counter() - start)
        self._pipelines: dict[Any, Any] = {}

    def _pipeline(self, job: Job):
        from fastvmt.generation.pipeline import MotionTransferPipeline

        strategy = job_strategy(self.settings, job)
        key = repr(strategy.to_dict())
        if key not in self._pipelines:
            backend = None if self.settings.backend == "auto" else self.settings.backend
            self._pipelines[key] = MotionTransferPipeline(self.backbone, strategy, backend)
        return self._pipelines[key]

    def run(self, job: Job, out_dir: str | Path) -> JobOutcome:
        """Run ``job``, writing ``out_dir/<id>/output.mp4`` then its sidecar; a failure writes ``error.json``."""
        paths = JobPaths(Path(out_dir), job.id)
        start = time.perf_counter()
        try:
            metrics = self._generate(job, paths)
        except Exception as error:  # recorded in error.json; the batch goes on with the other jobs
            log.warning("job %s failed: %s", job.id, error)
            return failure(paths, error, seconds=time.perf_counter() - start, worker=self.name,
                           model_loads=_MODEL_LOADS)
        paths.error.unlink(missing_ok=True)
        return JobOutcome(job.id, "done", time.perf_counter() - start, None, self.name, _MODEL_LOADS, metrics)

    def _generate(self, job: Job, paths: JobPaths) -> dict[str, Any]:
        from fastvmt.io import read_video, write_video
        from fastvmt.outputs import write_json
        from fastvmt.generation.pipeline import DEFAULT_NEGATIVE_PROMPT

        settings = self.settings
        video = read_video(job.reference, num_frames=settings.num_frames, height=settings.height,
                           width=settings.width)
        pipe = self._pipeline(job)
        result = pipe(
            video.frames, job.prompt, negative_prompt=settings.negative_prompt or DEFAULT_NEGATIVE_PROMPT,
            num_inference_steps=settings.num_inference_steps, denoising_strength=settings.denoising_strength,
            cfg_scale=settings.cfg_scale, seed=settings.seed if job.seed is None else job.seed,
            progress=settings.progress,
        )
        metrics = _motion_fidelity(video.frames, result.frames) if settings.metrics else {}
        result.report.config.update(reference=job.reference, model_dir=settings.model_dir)
        paths.folder.mkdir(parents=True, exist_ok=True)
        write_video(paths.video, result.frames, fps=video.fps, overwrite=True)  # a rerun replaces a stray video
        sidecar = {**result.report.to_dict(), "job": {"id": job.id, "line": job.line, "worker": self.name},
                   "metrics": metrics}
        write_json(paths.sidecar, sidecar)  # last: its presence marks the job finished
        return metrics


def _motion_fidelity(reference: Any, generated: Any) -> dict[str, Any]:
    """``{"motion_fidelity": {...}}``; a video the tracker cannot follow records the reason instead of a score."""
    from fastvmt.metrics import evaluate_motion_fidelity

    try:
        return {"motion_fidelity": evaluate_motion_fidelity(reference, generated).to_dict()}
    except ValueError as error:
        log.warning("motion fidelity not scored: %s", error)
        return {"motion_fidelity": {"error": str(error)}}
