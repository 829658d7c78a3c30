"""A batch worker: loads the backbone once, then runs jobs one after another, each writing its own folder.

The same class runs in-process (local executor) and as a Ray actor (one per GPU or CPU slot). A job's
exception is recorded in its ``error.json`` and the worker goes on; ``KeyboardInterrupt`` is not caught.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastvmt.batch.manifest import Job
from fastvmt.batch.results import JobOutcome, JobPaths, failure, worker_name
from fastvmt.batch.settings import BatchSettings
from fastvmt.transfer_run import prepare_transfer

if TYPE_CHECKING:
    from fastvmt.generation.motion_check import MotionCheck

__all__ = ["JobWorker"]

log = logging.getLogger(__name__)

#: Backbones this process has loaded for batches (reported with each outcome: 1 when a worker loads once).
_MODEL_LOADS = 0


class JobWorker:
    """Holds one loaded backbone and runs jobs on it (a pipeline per strategy, built on the same backbone)."""

    def __init__(self, settings: BatchSettings):
        global _MODEL_LOADS
        import torch

        if settings.threads is not None:
            torch.set_num_threads(settings.threads)
        self.settings = settings
        self.name = worker_name()
        start = time.perf_counter()
        self.backbone = settings.load_backbone()
        _MODEL_LOADS += 1
        log.info("worker %s loaded %s in %.1f s", self.name, settings.model_dir, time.perf_counter() - start)
        self._pipelines: dict[Any, Any] = {}

    def _pipeline(self, job: Job):
        strategy = self.settings.job_strategy(job)
        key = repr(strategy.to_dict())
        if key not in self._pipelines:
            self._pipelines[key] = self.settings.pipeline(self.backbone, strategy)
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
        paths.folder.mkdir(parents=True, exist_ok=True)
        transfer = prepare_transfer(job, self.settings, paths.video, overwrite=True)  # a rerun replaces a stray video
        result = transfer.run(self._pipeline(job))
        metrics = _motion_fidelity(result.report.motion_check) if self.settings.metrics else {}
        transfer.write(result, job={"id": job.id, "line": job.line, "worker": self.name}, metrics=metrics)
        return metrics


def _motion_fidelity(check: MotionCheck | None) -> dict[str, Any]:
    """``{"motion_fidelity": {...}}`` from the run's own motion check (the video is not tracked a second time); a
    video the tracker could not follow records the reason instead of a score."""
    if check is None:
        raise RuntimeError("the pipeline returned no motion check, so the job has no motion fidelity to record")
    if check.motion_fidelity is None:
        log.warning("motion fidelity not scored: %s", check.motion_fidelity_error)
        return {"motion_fidelity": {"error": check.motion_fidelity_error}}
    return {"motion_fidelity": check.motion_fidelity.to_dict()}
