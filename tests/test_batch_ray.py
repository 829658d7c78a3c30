"""``fastvmt batch`` on Ray (CPU): an actor pool that loads the model once per worker, the same videos as the
local executor, failures recorded, a cluster joined by address, a killed Ray batch finished by a rerun.

One local Ray session (2 CPUs) serves the module; worker processes start slowly (each imports diffsynth).
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from fastvmt.batch import BatchSettings, LocalExecutor, RayExecutor, load_jobs, run_batch
from fastvmt.batch.results import worker_name
from fastvmt.cli import app
from fastvmt.io import read_video
from tests.support.batch_inputs import clips, model_dir, write_manifest  # noqa: F401  (fixtures)

ray = pytest.importorskip("ray", reason="the Ray executor tests need Ray: pip install 'fastvmt[ray]'")

SIZE = {"num_frames": 9, "height": 48, "width": 64, "num_inference_steps": 2, "dtype": "float32", "threads": 1}


@pytest.fixture(scope="module")
def ray_session():
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


JOBS = [
    {"reference": "pan_right.mp4", "prompt": "a red ball", "id": "ball"},
    {"reference": "garbage.mp4", "prompt": "broken", "id": "bad"},
    {"reference": "pan_down.mp4", "prompt": "a blue cube", "seed": 7, "id": "cube"},
    {"reference": "pan_down.mp4", "prompt": "a fox", "strategy": "ditflow", "id": "fox"},
]


def test_ray_pool_loads_once_per_worker_and_matches_the_local_executor(tmp_path, ray_session, clips, model_dir):
    settings = BatchSettings(model_dir=str(model_dir), **SIZE)
    jobs = load_jobs(write_manifest(clips / "jobs.jsonl", JOBS), settings)
    seen = []
    summary = run_batch(jobs, settings, tmp_path / "ray", RayExecutor(gpus_per_job=0.0, cpus_per_job=1.0),
                        on_progress=lambda outcome, number, total: seen.append((number, total, outcome.id)))

    assert summary.counts == {"done": 3, "failed": 1, "skipped": 0}
    assert sorted(job_id for _, _, job_id in seen) == sorted(job["id"] for job in JOBS)
    assert [(number, total) for number, total, _ in seen] == [(n, 4) for n in range(1, 5)]
    assert "garbage.mp4" in json.loads((tmp_path / "ray" / "bad" / "error.json").read_text())["error"]
    workers = summary.workers()
    assert len(workers) == 2 and sum(w["jobs"] for w in workers.values()) == 4
    assert all(w["model_loads"] == 1 for w in workers.values()), workers  # not reloaded per job
    assert worker_name() not in workers  # the jobs ran in Ray's worker processes

    local = run_batch(jobs[:1], settings, tmp_path / "local", LocalExecutor())
    assert local.counts["done"] == 1
    assert np.array_equal(read_video(tmp_path / "ray" / "ball" / "output.mp4").frames,
                          read_video(tmp_path / "local" / "ball" / "output.mp4").frames)


def test_a_killed_batch_on_a_cluster_address_is_finished_by_a_rerun(tmp_path, ray_session, clips, model_dir):
    """``fastvmt batch --ray-address`` in a subprocess, killed once a job has finished; a rerun runs the rest."""
    manifest = write_manifest(clips / "kill.jsonl", [job for job in JOBS if job["id"] != "bad"])
    out = tmp_path / "results"
    options = ["--model-dir", str(model_dir), "--frames", "9", "--height", "48", "--width", "64", "--steps", "2",
               "--dtype", "float32"]
    command = [sys.executable, "-m", "fastvmt", "batch", str(manifest), "--out", str(out), *options,
               "--executor", "ray", "--ray-address", ray_session, "--gpus-per-job", "0", "--workers", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        while not list(out.glob("*/output.json")) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        output = process.communicate()[0]
    finished = {path.parent.name for path in out.glob("*/output.json")}
    assert 1 <= len(finished) < 3, output

    rerun = CliRunner().invoke(app, ["batch", str(manifest), "--out", str(out), *options, "--cpus-per-job", "1"])
    assert rerun.exit_code == 0, rerun.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"done": 3 - len(finished), "failed": 0, "skipped": len(finished)}
    assert {job["id"] for job in summary["jobs"] if job["status"] == "skipped"} == finished
