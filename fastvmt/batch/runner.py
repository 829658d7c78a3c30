"""Run a batch: check everything up front, skip finished jobs, hand the rest to an executor, summarise.

>>> jobs = load_jobs("jobs.jsonl", settings)  # doctest: +SKIP
>>> summary = run_batch(jobs, settings, "results", LocalExecutor())  # doctest: +SKIP
>>> summary.counts  # doctest: +SKIP
{'done': 98, 'failed': 2, 'skipped': 0}
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from fastvmt.batch.executors.base import Executor
from fastvmt.batch.manifest import Job, read_manifest
from fastvmt.batch.results import JobOutcome, JobPaths
from fastvmt.batch.settings import BatchSettings
from fastvmt.batch.summary import BatchSummary
from fastvmt.outputs import refuse_inputs
from fastvmt.transfer_run import check_takes_image

__all__ = ["SUMMARY_FILE", "batch_outputs", "load_jobs", "run_batch"]

log = logging.getLogger(__name__)

#: The summary JSON of the last run, in the output folder.
SUMMARY_FILE = "summary.json"

#: Called after each job that ran: ``(outcome, jobs finished so far in this run, jobs to run)``.
Progress = Callable[[JobOutcome, int, int], None]


def load_jobs(manifest: str | Path, settings: BatchSettings) -> list[Job]:
    """Check the settings, then read the manifest, checking every line's strategy, and that a line with an image
    has an image-to-video checkpoint, as well (no model loads).

    Raises:
        ManifestError: all bad lines at once; ValueError etc. for a bad setting.
    """
    settings.check()

    def check(job: Job) -> None:
        settings.job_strategy(job)
        if job.image is not None:
            check_takes_image(settings.model_dir, "'image'")

    return read_manifest(manifest, check=check)


def _skipped(paths: JobPaths) -> JobOutcome:
    try:
        metrics = paths.recorded_metrics()
    except ValueError as error:
        raise ValueError(f"{error}; delete it to run job {paths.job_id} again") from None
    return JobOutcome(paths.job_id, "skipped", metrics=metrics)


def batch_outputs(jobs: Sequence[Job], out_dir: str | Path) -> list[Path]:
    """Every file a batch of ``jobs`` into ``out_dir`` may write."""
    paths = [JobPaths(Path(out_dir), job.id) for job in jobs]
    return [Path(out_dir) / SUMMARY_FILE, *(file for p in paths for file in (p.video, p.sidecar, p.error))]


def run_batch(
    jobs: Sequence[Job],
    settings: BatchSettings,
    out_dir: str | Path,
    executor: Executor,
    on_progress: Progress | None = None,
    *,
    inputs: Iterable[tuple[str, str | Path | None]] = (),
) -> BatchSummary:
    """Run the unfinished ``jobs`` into ``out_dir/<id>/`` and write ``out_dir/summary.json``.

    A job is finished (and skipped) when its video and sidecar are both there, so rerunning a batch after a
    crash or Ctrl-C runs only what is missing, failed jobs included. ``KeyboardInterrupt`` propagates (the
    finished jobs stay; no summary is written).

    Raises:
        OutputIsInputError: before any job runs, when a file the batch may write is a job's reference or image, one of
            ``inputs`` (``(what, path)``: the manifest), or lies in a reference folder.
    """
    out_dir = Path(out_dir)
    given = [(f"{what} of job {job.id}", path) for job in jobs for what, path in
             (("reference", job.reference), ("image", job.image)) if path is not None]
    refuse_inputs(batch_outputs(jobs, out_dir), [*inputs, *given])
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    outcomes: dict[str, JobOutcome] = {}
    pending: list[Job] = []
    for job in jobs:
        paths = JobPaths(out_dir, job.id)
        if paths.finished():
            outcomes[job.id] = _skipped(paths)
        else:
            pending.append(job)
    log.info("%d job(s) to run, %d finished before", len(pending), len(outcomes))
    if pending:
        for number, outcome in enumerate(executor.run(pending, settings, out_dir), start=1):
            outcomes[outcome.id] = outcome
            if on_progress is not None:
                on_progress(outcome, number, len(pending))
    missing = [job.id for job in jobs if job.id not in outcomes]
    if missing:
        raise RuntimeError(f"executor {executor.name!r} returned no outcome for job(s) {', '.join(missing)}")
    summary = BatchSummary(tuple(outcomes[job.id] for job in jobs), time.perf_counter() - start, executor.name)
    summary.write(out_dir / SUMMARY_FILE)
    return summary
