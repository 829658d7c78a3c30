"""``fastvmt batch`` with the local executor on the tiny Wan: outputs per job, failures recorded, resumable."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fastvmt.cli import app
from fastvmt.io import read_video, write_video
from fastvmt.generation.pipeline import MotionTransferPipeline, TransferResult
from fastvmt.generation.motion_check import MotionCheck
from fastvmt.generation.report import RunReport
from fastvmt.metrics import evaluate_motion_fidelity
from fastvmt.synthetic import moving_scene
from tests.support.batch_inputs import clips, model_dir, write_manifest  # noqa: F401  (fixtures)

RUN = ["--frames", "9", "--height", "48", "--width", "64", "--steps", "2", "--dtype", "float32",
       "--cpus-per-job", "1"]


def run_batch_cli(manifest, out, model_dir, *options):
    return CliRunner().invoke(app, ["batch", str(manifest), "--out", str(out), "--model-dir", str(model_dir), *RUN,
                                    *options])


def summary_of(out):
    return json.loads((out / "summary.json").read_text())


def files_state(folder):
    return {path.name: (path.stat().st_mtime_ns, path.read_bytes()) for path in folder.iterdir()}


GOOD_JOBS = [
    {"reference": "pan_right.mp4", "prompt": "a red ball", "id": "ball"},
    {"reference": "pan_down.mp4", "prompt": "a blue cube", "seed": 7, "id": "cube"},
    {"reference": "pan_down.mp4", "prompt": "a fox", "strategy": "ditflow", "overrides": {"inner_iterations": 2},
     "id": "fox"},
]


def test_jobs_write_their_outputs_a_bad_video_fails_alone_and_a_rerun_skips_finished(tmp_path, clips, model_dir):
    manifest = write_manifest(clips / "jobs.jsonl", [*GOOD_JOBS[:2], {"reference": "garbage.mp4", "prompt": "x",
                                                                       "id": "bad"}, GOOD_JOBS[2]])
    out = tmp_path / "results"
    first = run_batch_cli(manifest, out, model_dir, "--seed", "5")
    assert first.exit_code == 1, first.output
    assert summary_of(out)["counts"] == {"done": 3, "failed": 1, "skipped": 0}

    for job in GOOD_JOBS:
        assert read_video(out / job["id"] / "output.mp4").frames.shape == (9, 48, 64, 3)
        sidecar = json.loads((out / job["id"] / "output.json").read_text())
        assert sidecar["seed"] == job.get("seed", 5) and sidecar["config"]["prompt"] == job["prompt"]
        assert sidecar["config"]["reference"] == str(clips / job["reference"])
        assert sidecar["job"]["id"] == job["id"]
    fox = json.loads((out / "fox" / "output.json").read_text())["config"]["strategy"]
    assert fox["name"] == "ditflow" and fox["inner_iterations"] == 2
    error = json.loads((out / "bad" / "error.json").read_text())
    assert "garbage.mp4" in error["error"] and "read_video" in error["traceback"]
    assert not (out / "bad" / "output.json").exists()

    finished = {job["id"]: files_state(out / job["id"]) for job in GOOD_JOBS}
    rerun = run_batch_cli(manifest, out, model_dir, "--seed", "5")
    assert rerun.exit_code == 1, rerun.output
    assert summary_of(out)["counts"] == {"done": 0, "failed": 1, "skipped": 3}
    assert {job_id: files_state(out / job_id) for job_id in finished} == finished

    write_video(clips / "garbage.mp4", moving_scene(9, 48, 64, seed=4)[0], overwrite=True)  # the user fixes it
    fixed = run_batch_cli(manifest, out, model_dir, "--seed", "5")
    assert fixed.exit_code == 0, fixed.output
    assert summary_of(out)["counts"] == {"done": 1, "failed": 0, "skipped": 3}
    assert (out / "bad" / "output.json").exists() and not (out / "bad" / "error.json").exists()


@pytest.fixture
def counted_pipeline(monkeypatch):
    """Counts pipeline runs; ``interrupt_at`` makes that run raise KeyboardInterrupt (Ctrl-C mid-batch)."""
    real_call = MotionTransferPipeline.__call__
    state = {"calls": 0, "interrupt_at": None}

    def call(self, *args, **kwargs):
        state["calls"] += 1
        if state["calls"] == state["interrupt_at"]:
            raise KeyboardInterrupt
        return real_call(self, *args, **kwargs)

    monkeypatch.setattr(MotionTransferPipeline, "__call__", call)
    return state


def test_an_interrupted_batch_resumes_with_only_the_missing_jobs(tmp_path, clips, model_dir, counted_pipeline):
    manifest = write_manifest(clips / "resume.jsonl", GOOD_JOBS)
    out = tmp_path / "results"
    counted_pipeline["interrupt_at"] = 2
    interrupted = run_batch_cli(manifest, out, model_dir)
    assert interrupted.exit_code == 130 and "rerun the same command" in interrupted.output
    assert (out / "ball" / "output.json").exists() and not (out / "cube" / "output.json").exists()
    assert not (out / "summary.json").exists()
    # A kill between writing a job's video and its sidecar leaves a video without sidecar: not finished.
    (out / "fox").mkdir()
    (out / "fox" / "output.mp4").write_bytes(b"half of a job")
    ball = files_state(out / "ball")

    counted_pipeline.update(calls=0, interrupt_at=None)
    resumed = run_batch_cli(manifest, out, model_dir)
    assert resumed.exit_code == 0, resumed.output
    assert counted_pipeline["calls"] == 2
    assert summary_of(out)["counts"] == {"done": 2, "failed": 0, "skipped": 1}
    assert files_state(out / "ball") == ball
    assert read_video(out / "fox" / "output.mp4").frames.shape == (9, 48, 64, 3)


def test_metrics_record_each_runs_own_motion_check(tmp_path, clips, model_dir, monkeypatch):
    def copy_the_reference(self, video, prompt, **options):  # a perfect motion transfer
        report = RunReport(config={"prompt": prompt}, seed=options["seed"])
        report.motion_check = MotionCheck(0.0, 0, 0, evaluate_motion_fidelity(video, video))
        return TransferResult(frames=np.asarray(video), latents=torch.zeros(1), report=report)

    monkeypatch.setattr(MotionTransferPipeline, "__call__", copy_the_reference)
    manifest = write_manifest(clips / "metrics.jsonl", GOOD_JOBS[:2])
    result = run_batch_cli(manifest, tmp_path / "results", model_dir, "--metrics")
    assert result.exit_code == 0, result.output
    for job in GOOD_JOBS[:2]:
        sidecar = json.loads((tmp_path / "results" / job["id"] / "output.json").read_text())
        assert sidecar["metrics"]["motion_fidelity"] == sidecar["motion_check"]["motion_fidelity"]
        assert sidecar["metrics"]["motion_fidelity"]["score"] > 0.95
    assert summary_of(tmp_path / "results")["mean_motion_fidelity"] > 0.95
    assert "mean motion fidelity" in result.output
