"""Replays are exact: a sidecar records resolved paths, dtype, device, AMF backend and attention kernel, replays to
identical frames from any working directory, and a replay that computes differently says so on stderr."""

import json
import os

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fastvmt.cli import app
from fastvmt.io import read_video, write_video
from fastvmt.synthetic import moving_scene
from fastvmt.transfer_run import TransferSettings, effective_backend, replay_note, replay_options

RUN = ["--frames", "9", "--height", "48", "--width", "64", "--steps", "2", "--no-progress"]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def notes(result):
    return [line for line in result.output.splitlines() if line.startswith("note: this replay")]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A float32 run made with relative paths from its own folder: (folder, sidecar)."""
    from fastvmt.backbones.tiny import write_tiny_checkpoint

    folder = tmp_path_factory.mktemp("recorded")
    write_tiny_checkpoint(folder / "model", seed=0)
    write_video(folder / "scene.mp4", moving_scene(9, 48, 64, seed=3, pan=(0.0, 2.0))[0], fps=16)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        result = invoke("transfer", "scene.mp4", "--prompt", "a ball", "--model-dir", "model", "--out", "run.mp4",
                        "--dtype", "float32", "--seed", 5, *RUN)
    assert result.exit_code == 0, result.output
    return folder, folder / "run.json"


@pytest.mark.slow
def test_a_replay_from_another_folder_gives_identical_frames_and_the_sidecar_records_the_run(recorded, tmp_path,
                                                                                              monkeypatch):
    folder, sidecar = recorded
    config = json.loads(sidecar.read_text())["config"]
    assert config["reference"] == str((folder / "scene.mp4").resolve())
    assert config["model_dir"] == str((folder / "model").resolve())
    assert (config["dtype"], config["device"], config["offload"], config["backend"]) == ("float32", None, False, "auto")
    assert config["environment"]["device"] == (f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available()
                                               else "cpu")  # the default device: CUDA when there is one
    assert config["attention"] == "auto"
    assert config["environment"]["attention"] in ("torch", "flash_attention_2", "flash_attention_3", "sage_attention")
    assert config["environment"]["gradient_attention"] in ("torch", "flash_attention_2", "flash_attention_3")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    replay = invoke("transfer", "--config", os.path.relpath(sidecar, elsewhere), "--out", "again.mp4", "--no-progress")
    assert replay.exit_code == 0, replay.output
    assert notes(replay) == []
    assert np.array_equal(read_video(elsewhere / "again.mp4").frames, read_video(folder / "run.mp4").frames)
    assert json.loads((elsewhere / "again.json").read_text())["config"] == config


@pytest.mark.slow
def test_a_replay_in_another_dtype_runs_and_says_so_in_one_note(recorded, tmp_path):
    _, sidecar = recorded
    replay = invoke("transfer", "--config", sidecar, "--out", tmp_path / "bf16.mp4", "--dtype", "bfloat16",
                    "--no-progress")
    assert replay.exit_code == 0, replay.output
    (note,) = notes(replay)
    assert "dtype bfloat16 (recorded float32)" in note and "frames may differ" in note
    assert json.loads((tmp_path / "bf16.json").read_text())["config"]["dtype"] == "bfloat16"


def test_the_note_names_each_difference_and_is_absent_when_nothing_differs(tmp_path):
    from fastvmt.transfer_run import run_environment

    settings = TransferSettings(model_dir=tmp_path, dtype="float32")
    here = run_environment(torch.device("cpu"))
    same = {"dtype": "float32", "environment": here}
    assert replay_note(same, settings, torch.device("cpu")) is None
    assert replay_note({}, settings, torch.device("cpu")) is None  # not a replay: nothing recorded
    elsewhere = {"dtype": "bfloat16", "environment": {**here, "device": "cuda:0", "device_name": "NVIDIA H200"},
                 "versions": {"torch": "0.0.1"}}
    note = replay_note(elsewhere, settings, torch.device("cpu"))
    for part in ("dtype float32 (recorded bfloat16)", "device cpu (recorded cuda:0)",
                 "(recorded NVIDIA H200)", "(recorded 0.0.1)"):
        assert part in note, note
    assert "\n" not in note


def test_relative_paths_in_a_sidecar_are_read_from_its_folder(tmp_path, monkeypatch):
    folder = tmp_path / "runs"
    folder.mkdir()
    (folder / "old.json").write_text(json.dumps({"seed": 1, "config": {
        "reference": "clips/dog.mp4", "model_dir": "/models/wan", "prompt": "a fox"}}))
    monkeypatch.chdir(tmp_path.parent)
    options = replay_options(folder / "old.json")
    assert options["reference"] == str(folder.resolve() / "clips" / "dog.mp4")
    assert options["model_dir"] == "/models/wan" and options["seed"] == 1


def test_the_backend_recorded_is_the_one_in_effect(monkeypatch):
    monkeypatch.delenv("FASTVMT_BACKEND", raising=False)
    assert effective_backend("auto") == "auto"
    monkeypatch.setenv("FASTVMT_BACKEND", "reference")  # auto follows the environment: the replay must too
    assert effective_backend("auto") == "reference" and effective_backend("torch") == "torch"

