"""``fastvmt transfer --save-motion`` and ``--motion`` on the tiny Wan checkpoint (docs/cli.md)."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from fastvmt.cli import app
from fastvmt.io import read_video, write_video
from fastvmt.synthetic import moving_scene
from tests.support.tiny_wan import tiny_wan_dir  # noqa: F401  (fixture)

runner = CliRunner()
SIZE = ["--frames", 9, "--height", 48, "--width", 64, "--dtype", "float32", "--no-progress"]
ROPE = ["--strategy", "ditflow", "--set", "target=rope", "--set", "block=1", "--set", "inner_iterations=2",
        "--set", "learning_rate=[0.05,0.05]"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_user_error(result, message):
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in result.output, result.output


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_wan_dir):
    folder = tmp_path_factory.mktemp("motion")
    frames, _ = moving_scene(9, 48, 64, seed=3, pan=(0.0, 2.0), object_velocity=(0.5, 1.0))
    clip = write_video(folder / "scene.mp4", frames, fps=16)
    result = invoke("transfer", clip, "--prompt", "a ball", "--model-dir", tiny_wan_dir, "--steps", 3, "--seed", 5,
                    *ROPE, *SIZE, "--out", folder / "a.mp4", "--save-motion", folder / "motion.safetensors")
    assert result.exit_code == 0, result.output
    return folder


def test_save_motion_then_motion_replays_the_video_without_gradients(saved, tiny_wan_dir):
    sidecar = json.loads((saved / "a.json").read_text())
    assert sidecar["motion_file"] == str((saved / "motion.safetensors").resolve())
    assert sidecar["counts"]["gradients_computed"] == 2
    # Size, steps and strategy come from the file; same prompt and seed: the same video.
    again = invoke("transfer", "--motion", saved / "motion.safetensors", "--prompt", "a ball", "--model-dir",
                   tiny_wan_dir, "--seed", 5, "--dtype", "float32", "--no-progress", "--out", saved / "b.mp4")
    assert again.exit_code == 0, again.output
    replay = json.loads((saved / "b.json").read_text())
    assert replay["counts"]["gradients_computed"] == 0 and replay["counts"]["steps"] == 3
    first, second = (read_video(saved / name).frames.astype(int) for name in ("a.mp4", "b.mp4"))
    assert np.abs(first - second).max() <= 1  # equal latents up to float rounding, the same encoder
    # The sidecar of a --motion run replays it.
    replayed = invoke("transfer", "--config", saved / "b.json", "--out", saved / "g.mp4", "--no-progress")
    assert replayed.exit_code == 0, replayed.output
    assert np.array_equal(read_video(saved / "g.mp4").frames, read_video(saved / "b.mp4").frames)


def test_motion_refuses_another_schedule_or_a_reference_in_one_line(saved, tiny_wan_dir):
    common = ["--prompt", "a cat", "--model-dir", tiny_wan_dir, "--dtype", "float32", "--no-progress"]
    assert_user_error(invoke("transfer", "--motion", saved / "motion.safetensors", "--steps", 4, *common,
                             "--out", saved / "c.mp4"), "another step schedule")
    assert_user_error(invoke("transfer", saved / "scene.mp4", "--motion", saved / "motion.safetensors", *common,
                             "--out", saved / "d.mp4"), "without a reference")
    assert_user_error(invoke("transfer", "--motion", saved / "a.mp4", *common, "--out", saved / "e.mp4"),
                      "not a usable fastvmt motion file")
    assert not any((saved / name).exists() for name in ("c.mp4", "d.mp4", "e.mp4"))


def test_save_motion_refuses_before_any_work(saved, tiny_wan_dir):
    common = ["--prompt", "a cat", "--model-dir", tiny_wan_dir, *SIZE, "--out", saved / "f.mp4"]
    assert_user_error(invoke("transfer", saved / "scene.mp4", *common, "--save-motion", saved / "m2.safetensors"),
                      "no motion embeddings to save")
    assert_user_error(invoke("transfer", saved / "scene.mp4", *common, *ROPE, "--set", "denoising_strength=0.75",
                             "--save-motion", saved / "m2.safetensors"), "pure noise")
    assert_user_error(invoke("transfer", saved / "scene.mp4", *common, *ROPE, "--save-motion",
                             saved / "motion.safetensors"), "exist")
    assert not (saved / "f.mp4").exists() and not (saved / "m2.safetensors").exists()
