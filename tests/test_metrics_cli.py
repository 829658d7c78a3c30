"""``fastvmt eval``: motion fidelity of two video files."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from fastvmt.cli import app

cv2 = pytest.importorskip("cv2")
iio = pytest.importorskip("imageio.v3")


def _moving_video(frames: int, step: tuple[float, float], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.random((240, 240, 3)).astype(np.float32), (0, 0), 3.0)
    tex = ((tex - tex.min()) / (tex.max() - tex.min()) * 255).astype(np.uint8)
    shifts = [np.float32([[1, 0, t * step[0] - 60], [0, 1, t * step[1] - 60]]) for t in range(frames)]
    return np.stack([cv2.warpAffine(tex, m, (96, 64)) for m in shifts])


@pytest.fixture
def videos(tmp_path):
    paths = {}
    for name, video in {
        "ref": _moving_video(9, (2.0, 0.0)),
        "same": _moving_video(9, (2.0, 0.0), seed=1),
        "back": _moving_video(9, (-2.0, 0.0), seed=1),
        "short": _moving_video(5, (2.0, 0.0)),
    }.items():
        paths[name] = tmp_path / f"{name}.mp4"
        iio.imwrite(paths[name], video, fps=8, plugin="FFMPEG", codec="libx264", quality=10)
    return paths


def test_eval_scores_same_motion_above_opposite_motion(videos):
    runner = CliRunner()
    same = runner.invoke(app, ["eval", str(videos["ref"]), str(videos["same"]), "--grid", "10", "--json"])
    back = runner.invoke(app, ["eval", str(videos["ref"]), str(videos["back"]), "--grid", "10", "--json"])
    assert same.exit_code == 0, same.output
    same_result, back_result = json.loads(same.stdout), json.loads(back.stdout)
    assert same_result["frames"] == 9 and same_result["tracker"] == "lk"
    assert same_result["score"] > 0.5 > 0.0 > back_result["score"]

    text = runner.invoke(app, ["eval", str(videos["ref"]), str(videos["same"]), "--grid", "10"])
    assert text.exit_code == 0 and text.stdout.startswith("motion fidelity: ")


def test_eval_scores_every_frame_without_fitting_to_4k_plus_1(tmp_path):
    paths = [tmp_path / "ref10.mp4", tmp_path / "gen10.mp4"]
    for seed, path in enumerate(paths):
        iio.imwrite(path, _moving_video(10, (2.0, 0.0), seed=seed), fps=8, plugin="FFMPEG", codec="libx264")
    result = CliRunner().invoke(app, ["eval", *map(str, paths), "--grid", "6", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["frames"] == 10


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--tracker", "cotracker"], "local checkpoint"),
        (["--tracker", "nope"], "available: cotracker, lk"),
        (["--tracker-option", "checkpoint"], "KEY=VALUE"),
        (["--direction", "sideways"], "direction"),
        (["--prompt", "a dog"], "--clip-model"),
        (["--clip-model", "/nonexistent/clip"], "does not exist"),
    ],
)
def test_eval_bad_options_exit_2_with_one_line(videos, extra, message):
    result = CliRunner().invoke(app, ["eval", str(videos["ref"]), str(videos["same"]), *extra])
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output


def test_eval_bad_files_exit_2(videos, tmp_path):
    runner = CliRunner()
    mismatch = runner.invoke(app, ["eval", str(videos["ref"]), str(videos["short"])])
    assert mismatch.exit_code == 2 and "9 frames" in mismatch.stderr
    missing = runner.invoke(app, ["eval", str(tmp_path / "none.mp4"), str(videos["ref"])])
    assert missing.exit_code == 2 and f"video not found: '{tmp_path / 'none.mp4'}'" in missing.stderr
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video")
    unreadable = runner.invoke(app, ["eval", str(junk), str(videos["ref"])])
    assert unreadable.exit_code == 2 and f"cannot read '{junk}' as a video" in unreadable.stderr
