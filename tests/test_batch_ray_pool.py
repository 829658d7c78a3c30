"""The Ray executor's bookkeeping on a stand-in for Ray (synchronous, in-process): pool sizing from the cluster's
resources, a model that does not load, and a worker that dies mid-job. test_batch_ray.py runs the real thing."""

import json
import sys
from types import SimpleNamespace

import pytest

from fastvmt.batch import BatchSettings, Job, JobOutcome
from fastvmt.batch.executors.ray import RayExecutor


class WorkerDied(BaseException):
    """Raised by a stand-in worker to play a worker process that dies."""


class ActorDiedError(Exception):
    pass


class Ref:
    def __init__(self, value=None, error=None):
        self.value, self.error = value, error


class StandInRay:
    """What RayExecutor uses of Ray, run eagerly in this process."""

    exceptions = SimpleNamespace(RayActorError=ActorDiedError)

    def __init__(self, cpus, gpus=0.0):
        self.resources = {"CPU": float(cpus), "GPU": float(gpus)}
        self.actor_options, self.killed = [], []

    def is_initialized(self):
        return True

    def cluster_resources(self):
        return self.resources

    def remote(self, **options):
        def actor_class(cls):
            def create(*args):
                self.actor_options.append(options)
                instance = cls(*args)
                return SimpleNamespace(**{name: SimpleNamespace(remote=self._caller(getattr(instance, name)))
                                          for name in ("load_error", "run")})
            return SimpleNamespace(remote=create)
        return actor_class

    @staticmethod
    def _caller(method):
        def call(*args):
            try:
                return Ref(method(*args))
            except WorkerDied:
                return Ref(error=ActorDiedError("the actor died unexpectedly"))
        return call

    def get(self, refs):
        if isinstance(refs, list):
            return [self.get(ref) for ref in refs]
        if refs.error is not None:
            raise refs.error
        return refs.value

    def wait(self, refs, num_returns=1):
        return refs[:num_returns], refs[num_returns:]

    def kill(self, actor):
        self.killed.append(actor)


class StandInWorker:
    """A JobWorker without a model: ``prompt == "die"`` kills its process, model dir ``broken`` fails to load."""

    made = []

    def __init__(self, settings):
        if settings.model_dir == "broken":
            raise FileNotFoundError("checkpoint directory broken is incomplete")
        self.settings = settings
        StandInWorker.made.append(self)

    def run(self, job, out_dir):
        if job.prompt == "die":
            raise WorkerDied
        return JobOutcome(job.id, "done", 1.0, worker=f"worker-{StandInWorker.made.index(self)}", model_loads=1)


@pytest.fixture
def stand_in(monkeypatch):
    StandInWorker.made = []
    monkeypatch.setattr("fastvmt.batch.worker.JobWorker", StandInWorker)

    def install(cpus, gpus=0.0):
        fake = StandInRay(cpus, gpus)
        monkeypatch.setitem(sys.modules, "ray", fake)
        return fake

    return install


def jobs(*prompts):
    return [Job(id=f"job{i}", reference="/clips/a.mp4", prompt=prompt, line=i + 1) for i, prompt in enumerate(prompts)]


def test_the_pool_fits_the_cluster_and_reserves_each_workers_resources(stand_in, tmp_path):
    settings = BatchSettings(model_dir="model")
    ray = stand_in(cpus=8, gpus=2)
    outcomes = list(RayExecutor(gpus_per_job=1.0, cpus_per_job=2.0).run(jobs(*"abcde"), settings, tmp_path))
    assert [o.status for o in outcomes] == ["done"] * 5
    assert ray.actor_options == [{"num_cpus": 2.0, "num_gpus": 1.0}] * 2  # GPUs bound the pool
    assert {w.settings.threads for w in StandInWorker.made} == {2} and not StandInWorker.made[0].settings.progress

    ray = stand_in(cpus=3, gpus=2)
    list(RayExecutor(gpus_per_job=0.5, cpus_per_job=1.0).run(jobs(*"abcde"), settings, tmp_path))
    assert len(ray.actor_options) == 3  # four half-GPU slots, three CPUs
    ray = stand_in(cpus=64, gpus=8)
    list(RayExecutor(gpus_per_job=1.0).run(jobs("a", "b"), settings, tmp_path))
    assert len(ray.actor_options) == 2  # never more workers than jobs


def test_a_cluster_too_small_for_one_worker_is_an_error_naming_the_fix(stand_in, tmp_path):
    stand_in(cpus=4, gpus=0)
    with pytest.raises(ValueError, match="--gpus-per-job 0"):
        list(RayExecutor(gpus_per_job=1.0).run(jobs("a"), BatchSettings(model_dir="model"), tmp_path))


def test_a_model_that_does_not_load_stops_the_batch_with_its_own_error(stand_in, tmp_path):
    ray = stand_in(cpus=2)
    with pytest.raises(FileNotFoundError, match="broken is incomplete"):
        list(RayExecutor(gpus_per_job=0.0).run(jobs("a", "b"), BatchSettings(model_dir="broken"), tmp_path))
    assert len(ray.killed) == 2 and not list(tmp_path.iterdir())


def test_a_dying_worker_fails_its_job_only_and_is_replaced(stand_in, tmp_path):
    ray = stand_in(cpus=2)
    outcomes = list(RayExecutor(gpus_per_job=0.0).run(jobs("a", "die", "c", "d"), BatchSettings(model_dir="model"),
                                                      tmp_path))
    assert {o.id: o.status for o in outcomes} == {"job0": "done", "job1": "failed", "job2": "done", "job3": "done"}
    error = json.loads((tmp_path / "job1" / "error.json").read_text())
    assert "died" in error["error"] and error["type"] == "ActorDiedError"
    assert len(StandInWorker.made) == 3  # two workers, then one in place of the dead one
    assert {o.worker for o in outcomes if o.id in ("job2", "job3")} <= {"worker-0", "worker-2"}
    assert len(ray.killed) == 1 + 3  # the dead one at once, then the pool at the end
