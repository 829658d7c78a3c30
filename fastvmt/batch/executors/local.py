"""The local executor: one worker in this process, jobs one after another."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from fastvmt.batch.executors.base import Executor
from fastvmt.batch.manifest import Job
from fastvmt.batch.results import JobOutcome
from fastvmt.batch.settings import BatchSettings

__all__ = ["LocalExecutor"]


class LocalExecutor(Executor):
    """Loads the model once in this process and runs the jobs in manifest order on ``settings.device``."""

    name = "local"

    def run(self, jobs: Sequence[Job], settings: BatchSettings, out_dir: Path) -> Iterator[JobOutcome]:
        from fastvmt.batch.worker import JobWorker

        worker = JobWorker(settings)
        for job in jobs:
            yield worker.run(job, out_dir)
