"""Batch runs: a JSONL manifest of (reference, prompt) jobs run locally or on Ray, resumable.

>>> from fastvmt.batch import BatchSettings, LocalExecutor, load_jobs, run_batch  # doctest: +SKIP
>>> settings = BatchSettings(model_dir="Wan2.1-T2V-1.3B")  # doctest: +SKIP
>>> run_batch(load_jobs("jobs.jsonl", settings), settings, "results", LocalExecutor()).counts  # doctest: +SKIP
"""

from fastvmt.batch.executors import Executor, LocalExecutor
from fastvmt.batch.manifest import Job, ManifestError, job_id, read_manifest
from fastvmt.batch.results import JobOutcome, JobPaths
from fastvmt.batch.runner import SUMMARY_FILE, load_jobs, run_batch
from fastvmt.batch.settings import BatchSettings
from fastvmt.batch.summary import BatchSummary

__all__ = [
    "SUMMARY_FILE",
    "BatchSettings",
    "BatchSummary",
    "Executor",
    "Job",
    "JobOutcome",
    "JobPaths",
    "LocalExecutor",
    "ManifestError",
    "RayExecutor",
    "job_id",
    "load_jobs",
    "read_manifest",
    "run_batch",
]


def __getattr__(name: str):
    if name == "RayExecutor":  # imported on use: ray is an optional dependency
        from fastvmt.batch.executors.ray import RayExecutor

        return RayExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
