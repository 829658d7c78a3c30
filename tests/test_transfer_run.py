"""The one run path of ``fastvmt transfer`` and ``fastvmt batch``: the same sidecar for the same job (and it
replays), outputs checked before any work, both files or neither, every setting settable from both commands."""

import json
import os
from dataclasses import fields

import numpy as np
import pytest
import torch
import typer.main
from typer.testing import CliRunner

from fastvmt.cli import app
from fastvmt.generation.report import RunReport
from fastvmt.io import read_video
from fastvmt.transfer_run import TransferJob, TransferSettings, prepare_transfer
from tests.support.batch_inputs import clips, model_dir, write_manifest  # noqa: F401  (fixtures)

SIZE = ["--frames", "9", "--height", "48", "--width", "64", "--steps", "2", "--dtype", "float32"]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def sidecar(path):
    return json.loads(path.read_text())


@pytest.mark.slow
def test_a_batch_job_and_fastvmt_transfer_write_the_same_run_and_each_sidecar_replays(tmp_path, clips, model_dir):
    options = [*SIZE, "--seed", "5", "--set", "inner_iterations=2", "--strategy", "ditflow"]
    manifest = write_manifest(clips / "one.jsonl", [{"reference": "pan_right.mp4", "prompt": "a ball", "id": "ball"}])
    batch = invoke("batch", manifest, "--out", tmp_path / "batch", "--model-dir", model_dir, *options)
    assert batch.exit_code == 0, batch.output
    single = invoke("transfer", clips / "pan_right.mp4", "--prompt", "a ball", "--model-dir", model_dir,
                    "--out", tmp_path / "single.mp4", "--no-progress", *options)
    assert single.exit_code == 0, single.output

    from_batch, from_transfer = sidecar(tmp_path / "batch" / "ball" / "output.json"), sidecar(tmp_path / "single.json")
    assert set(from_batch) - set(from_transfer) == {"job", "metrics"} and set(from_transfer) <= set(from_batch)
    assert from_batch["config"] == from_transfer["config"] and from_batch["seed"] == from_transfer["seed"] == 5
    assert from_batch["config"]["strategy"]["name"] == "ditflow"
    assert from_batch["config"]["strategy"]["inner_iterations"] == 2
    batch_frames = read_video(tmp_path / "batch" / "ball" / "output.mp4").frames
    assert np.array_equal(batch_frames, read_video(tmp_path / "single.mp4").frames)

    replay = invoke("transfer", "--config", tmp_path / "batch" / "ball" / "output.json", "--out",
                    tmp_path / "replay.mp4", "--dtype", "float32", "--no-progress")
    assert replay.exit_code == 0, replay.output
    assert np.array_equal(read_video(tmp_path / "replay.mp4").frames, batch_frames)
    assert sidecar(tmp_path / "replay.json")["config"] == from_batch["config"]


def prepared(tmp_path, clips, **options):
    settings = TransferSettings(model_dir=tmp_path, num_frames=9, height=48, width=64)
    return prepare_transfer(TransferJob(clips / "pan_right.mp4", "a ball"), settings, tmp_path / "out.mp4", **options)


def copied_reference(transfer):
    """A run's result without a model: the reference itself, with a report."""
    from fastvmt.generation.pipeline import TransferResult

    return TransferResult(frames=transfer.reference.frames, latents=torch.zeros(1), report=RunReport(config={}, seed=1))


@pytest.mark.parametrize(("interrupted", "what"), [(1, "the video's rename"), (2, "the sidecar's rename")])
def test_an_interrupted_write_leaves_neither_file_nor_a_temporary_one(tmp_path, clips, monkeypatch, interrupted,
                                                                      what):
    transfer = prepared(tmp_path, clips)
    result = copied_reference(transfer)
    real_replace, calls = os.replace, []

    def replace(source, target):
        calls.append(target)
        if len(calls) == interrupted:
            raise KeyboardInterrupt(what)
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        transfer.write(result, metrics={})
    monkeypatch.undo()
    assert len(calls) == interrupted and sorted(p.name for p in tmp_path.iterdir()) == [], what

    transfer.write(result, metrics={})  # the same run written again, uninterrupted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "out.mp4"]
    assert read_video(tmp_path / "out.mp4").frames.shape == (9, 48, 64, 3)
    assert sidecar(tmp_path / "out.json")["metrics"] == {}


def test_an_existing_sidecar_is_refused_before_the_reference_is_read(tmp_path, clips):
    (tmp_path / "out.json").write_text("precious")
    with pytest.raises(FileExistsError, match="out.json"):
        prepare_transfer(TransferJob(tmp_path / "no-such-clip.mp4", "x"), TransferSettings(model_dir=tmp_path),
                         tmp_path / "out.mp4")
    assert prepared(tmp_path, clips, overwrite=True).reference.frames.shape == (9, 48, 64, 3)
    assert (tmp_path / "out.json").read_text() == "precious"


@pytest.mark.parametrize("command", ["transfer", "batch"])
def test_every_run_setting_is_an_option_of_both_commands(command):
    click_command = typer.main.get_command(app).commands[command]
    options = {param.name for param in click_command.params}
    assert {f.name for f in fields(TransferSettings)} <= options
