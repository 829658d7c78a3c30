"""The executor contract: run jobs, yield each one's outcome as it finishes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path

from fastvmt.batch.manifest import Job
from fastvmt.batch.results import JobOutcome
from fastvmt.batch.settings import BatchSettings

__all__ = ["Executor"]


class Executor(ABC):
    """Runs jobs with :class:`fastvmt.batch.worker.JobWorker` s, loading the model once per worker."""

    #: Name shown in the summary.
    name: str

    @abstractmethod
    def run(self, jobs: Sequence[Job], settings: BatchSettings, out_dir: Path) -> Iterator[JobOutcome]:
        """Run ``jobs`` (none finished yet) and yield one outcome per job, in completion order.

        A job's own failure is an outcome (``status="failed"``); an error that stops every job (the model does
        not load, the cluster cannot host a worker) is raised. ``KeyboardInterrupt`` stops the run and
        propagates, leaving finished jobs on disk.
        """
