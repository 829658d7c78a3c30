"""The command line: demo, flow, transfer with replay, listings, and one-line errors for bad input."""

import json

import imageio.v2 as imageio
import imageio.v3 as iio
import numpy as np
import pytest
from typer.testing import CliRunner

from fastvmt.cli import app
from fastvmt.io import read_video, write_video
from fastvmt.synthetic import moving_scene
from tests.support.tiny_wan import tiny_wan_dir  # noqa: F401  (fixture)

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_user_error(result, message):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], result.output


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    frames, _ = moving_scene(9, 48, 64, seed=3, pan=(0.0, 2.0), object_velocity=(0.5, 1.0))
    return write_video(tmp_path_factory.mktemp("clip") / "scene.mp4", frames, fps=16)


def test_listings_name_the_builtins():
    plugins = invoke("plugins").output
    for row in (["strategy", "fastvmt"], ["extractor", "windowed_amf"], ["backbone", "wan"], ["backend", "torch"]):
        assert any(line.split()[:2] == row for line in plugins.splitlines()), plugins
    strategies = invoke("strategies").output
    assert {line.split()[0] for line in strategies.splitlines()[1:]} >= {"fastvmt", "ditflow", "no_transfer"}


def test_flow_with_model_weights_writes_pictures(tmp_path, clip_path, tiny_wan_dir):
    result = invoke("flow", clip_path, "--model-dir", tiny_wan_dir, "--out", tmp_path, "--height", 48, "--width", 64,
                    "--tile", "1x1", "--window", 3)
    assert result.exit_code == 0, result.output
    with imageio.get_reader(tmp_path / "colors.mp4") as reader:
        assert reader.count_frames() == 2 and reader.get_meta_data()["fps"] == pytest.approx(16 / 4)


@pytest.mark.slow
def test_demo_small_writes_its_files_and_refuses_to_overwrite(tmp_path):
    result = invoke("demo", "--small", "--out", tmp_path, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "not meaningful" in result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["counts"]["gradients_computed"], report["counts"]["gradients_reused"]) == (4, 6)
    assert report["amf_timing_480x832"]["dense_seconds"] > 0
    assert read_video(tmp_path / "output.mp4").frames.shape == (9, 48, 64, 3)
    assert iio.imread(tmp_path / "flow.png").ndim == 3

    before = (tmp_path / "output.mp4").read_bytes()
    assert_user_error(invoke("demo", "--small", "--out", tmp_path), "--overwrite")
    assert (tmp_path / "output.mp4").read_bytes() == before


def test_flow_without_weights_writes_pictures(tmp_path, clip_path):
    result = invoke("flow", clip_path, "--out", tmp_path, "--height", 48, "--width", 64)
    assert result.exit_code == 0, result.output
    with imageio.get_reader(tmp_path / "arrows.mp4") as reader:
        assert reader.count_frames() == 2  # 3 latent frames -> 2 consecutive pairs
    assert iio.imread(tmp_path / "panel.png").shape[1] > 4 * 48


@pytest.mark.slow
def test_transfer_writes_video_and_sidecar_and_replays(tmp_path, clip_path, tiny_wan_dir):
    common = ["--frames", 9, "--height", 48, "--width", 64, "--steps", 2, "--dtype", "float32", "--no-progress"]
    first = invoke("transfer", clip_path, "--prompt", "a ball", "--model-dir", tiny_wan_dir, "--seed", 5,
                   "--set", "inner_iterations=3", "--out", tmp_path / "a.mp4", *common)
    assert first.exit_code == 0, first.output
    sidecar = json.loads((tmp_path / "a.json").read_text())
    assert sidecar["seed"] == 5 and sidecar["config"]["strategy"]["inner_iterations"] == 3
    replay = invoke("transfer", "--config", tmp_path / "a.json", "--out", tmp_path / "b.mp4", "--dtype", "float32",
                    "--no-progress")
    assert replay.exit_code == 0, replay.output
    assert np.array_equal(read_video(tmp_path / "a.mp4").frames, read_video(tmp_path / "b.mp4").frames)


@pytest.mark.parametrize("command", ["transfer", "flow"])
def test_missing_reference_is_a_one_line_error(tmp_path, tiny_wan_dir, command):
    extra = ["--prompt", "x", "--model-dir", tiny_wan_dir] if command == "transfer" else []
    assert_user_error(invoke(command, tmp_path / "nope.mp4", *extra, "--out", tmp_path / "o.mp4"), "nope.mp4")


def test_unreadable_video_is_a_one_line_error(tmp_path):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all" * 100)
    assert_user_error(invoke("flow", garbage, "--out", tmp_path / "f"), "garbage.mp4")


def test_too_few_frames_is_a_one_line_error(tmp_path):
    short = write_video(tmp_path / "short.mp4", np.zeros((3, 48, 64, 3), np.uint8))
    assert_user_error(invoke("flow", short, "--out", tmp_path / "f", "--height", 48, "--width", 64), "frames")


def test_bad_size_is_a_one_line_error(tmp_path, clip_path):
    assert_user_error(invoke("flow", clip_path, "--out", tmp_path / "f", "--height", 50), "multiple of 16")


def test_missing_model_dir_is_a_one_line_error(tmp_path, clip_path):
    result = invoke("transfer", clip_path, "--prompt", "x", "--model-dir", tmp_path / "no-model", "--out",
                    tmp_path / "o.mp4")
    assert_user_error(result, "no-model")


def test_existing_output_is_not_overwritten(tmp_path, clip_path, tiny_wan_dir):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"precious")
    result = invoke("transfer", clip_path, "--prompt", "x", "--model-dir", tiny_wan_dir, "--out", out)
    assert_user_error(result, "--overwrite")
    assert out.read_bytes() == b"precious"


def test_unknown_strategy_lists_choices(tmp_path, clip_path, tiny_wan_dir):
    result = invoke("transfer", clip_path, "--prompt", "x", "--model-dir", tiny_wan_dir, "--strategy", "fast",
                    "--out", tmp_path / "o.mp4", "--frames", 9, "--height", 48, "--width", 64)
    assert_user_error(result, "unknown strategy 'fast'; available: ditflow, ")
    assert "fastvmt, " in result.output  # the registered names, sorted
