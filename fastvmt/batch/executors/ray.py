"""The Ray executor: a pool of actors, each holding a :class:`JobWorker` with its loaded model, one job at a time.

Each actor reserves ``cpus_per_job`` CPUs and ``gpus_per_job`` GPUs (Ray sets ``CUDA_VISIBLE_DEVICES`` for it,
so ``cuda`` is its own GPU); the pool has as many actors as the cluster fits (or ``workers``), and each
finished job hands its actor the next one. A job's exception is recorded by the worker; an actor that dies
(killed, out of host memory, node lost) fails its job here and is replaced while jobs remain.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastvmt.batch.executors.base import Executor
from fastvmt.batch.manifest import Job
from fastvmt.batch.results import JobOutcome, JobPaths, failure
from fastvmt.batch.settings import BatchSettings

__all__ = ["PooledWorker", "RayExecutor"]

log = logging.getLogger(__name__)


class RayExecutor(Executor):
    """Runs jobs on Ray: a local Ray started here (and shut down after), or an existing cluster.

    Args:
        address: a cluster to join (``"auto"``, ``"HOST:PORT"``, ``"ray://HOST:10001"``); None starts a local
            Ray with ``num_cpus`` CPUs (None: all of this machine's). A process already connected to Ray (a
            notebook, a test session) keeps its session.
        gpus_per_job, cpus_per_job: what each worker reserves (fractions share a GPU between workers).
        workers: pool size; None fits the pool to the cluster's CPUs and GPUs (pass it on an autoscaling
            cluster, whose resources are not there yet).
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        gpus_per_job: float = 1.0,
        cpus_per_job: float = 1.0,
        workers: int | None = None,
        num_cpus: int | None = None,
    ):
        if gpus_per_job < 0:
            raise ValueError(f"gpus_per_job must be >= 0, got {gpus_per_job}")
        if cpus_per_job <= 0:
            raise ValueError(f"cpus_per_job must be > 0, got {cpus_per_job}")
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.address, self.num_cpus, self.workers = address, num_cpus, workers
        self.gpus_per_job, self.cpus_per_job = gpus_per_job, cpus_per_job

    def run(self, jobs: Sequence[Job], settings: BatchSettings, out_dir: Path) -> Iterator[JobOutcome]:
        import ray

        started_ray = self._connect(ray)
        actors: list[Any] = []
        try:
            count = self._pool_size(ray, len(jobs))
            settings = replace(settings, progress=False, threads=settings.threads or max(1, int(self.cpus_per_job)))
            worker_class = ray.remote(num_cpus=self.cpus_per_job, num_gpus=self.gpus_per_job)(PooledWorker)

            def spawn() -> Any:
                actor = worker_class.remote(settings)
                actors.append(actor)
                return actor

            log.info("starting %d Ray workers (%g CPU, %g GPU each)", count, self.cpus_per_job, self.gpus_per_job)
            pool = [spawn() for _ in range(count)]
            for load_error in ray.get([actor.load_error.remote() for actor in pool]):
                if load_error is not None:  # the model does not load: stop before any job, with its error
                    raise load_error
            yield from _dispatch(ray, pool, jobs, Path(out_dir), spawn)
        finally:
            for actor in actors:
                ray.kill(actor)
            if started_ray:
                ray.shutdown()

    def _connect(self, ray: Any) -> bool:
        """Join or start Ray; True when this call started the session (and so shuts it down)."""
        if ray.is_initialized():
            log.info("using the Ray session this process is already connected to")
            return False
        if self.address:
            ray.init(address=self.address)
        else:
            ray.init(address="local", num_cpus=self.num_cpus, include_dashboard=False)
        return True

    def _pool_size(self, ray: Any, num_jobs: int) -> int:
        if self.workers is not None:
            return min(self.workers, num_jobs)
        resources = ray.cluster_resources()
        cpus, gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
        fits = int(cpus // self.cpus_per_job)
        if self.gpus_per_job:
            fits = min(fits, int(gpus // self.gpus_per_job))
        if fits < 1:
            raise ValueError(
                f"the Ray cluster has {cpus:g} CPU(s) and {gpus:g} GPU(s), too few for one worker of "
                f"{self.cpus_per_job:g} CPU(s) and {self.gpus_per_job:g} GPU(s); lower --cpus-per-job, "
                f"use --gpus-per-job 0 to run on CPUs, or pass --workers on an autoscaling cluster"
            )
        return min(fits, num_jobs)


class PooledWorker:
    """A :class:`JobWorker` in a Ray actor. A model that does not load is kept as :meth:`load_error` (the
    driver re-raises it as it is: a missing checkpoint stays a ``FileNotFoundError``) instead of killing the
    actor, whose death would only say that its constructor failed."""

    def __init__(self, settings: BatchSettings):
        from fastvmt.batch.worker import JobWorker

        self._worker: JobWorker | None = None
        self._load_error: Exception | None = None
        try:
            self._worker = JobWorker(settings)
        except Exception as error:  # returned to the driver by load_error()
            self._load_error = error

    def load_error(self) -> Exception | None:
        """None once the model is loaded, else the loading error."""
        return self._load_error

    def run(self, job: Job, out_dir: str) -> JobOutcome:
        if self._worker is None:
            raise self._load_error  # a replacement worker whose model did not load: the batch stops
        return self._worker.run(job, out_dir)


def _dispatch(ray: Any, pool: list[Any], jobs: Sequence[Job], out_dir: Path, spawn: Any) -> Iterator[JobOutcome]:
    """Keep every actor busy with one job until the queue is empty; yield outcomes as they arrive."""
    queue = deque(jobs)
    running: dict[Any, tuple[Any, Job, float]] = {}

    def submit(actor: Any) -> None:
        job = queue.popleft()
        running[actor.run.remote(job, str(out_dir))] = (actor, job, time.perf_counter())

    for actor in pool:
        if queue:
            submit(actor)
    while running:
        [ref], _ = ray.wait(list(running), num_returns=1)
        actor, job, start = running.pop(ref)
        try:
            outcome = ray.get(ref)
        except ray.exceptions.RayActorError as error:
            log.warning("the Ray worker running job %s died: %s", job.id, error)
            outcome = failure(JobPaths(out_dir, job.id), error, seconds=time.perf_counter() - start,
                              worker="a Ray worker that died", model_loads=0)
            ray.kill(actor)
            actor = spawn() if queue else None
        yield outcome
        if actor is not None and queue:
            submit(actor)
