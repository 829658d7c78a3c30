"""Bad input through the real command line: one ``error:`` line, exit code 2, no traceback, nothing written, no
model loaded. Each row is a command with one thing wrong; the table covers sizes beyond the bound, non-finite and
out-of-range numbers, mistyped overrides and sidecars, a bad config.json, corrupt images, unknown options."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fastvmt.cli import app
from fastvmt.io import write_video
from fastvmt.synthetic import moving_scene

SIZE = ["--frames", "9", "--height", "48", "--width", "64"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A clip, a tiny checkpoint, one with a bad config.json, a sidecar, a manifest, and image folders."""
    from fastvmt.backbones.tiny import write_tiny_checkpoint

    root = tmp_path_factory.mktemp("inputs")
    frames, _ = moving_scene(9, 48, 64, seed=1)
    write_video(root / "clip.mp4", frames, fps=16)
    model = write_tiny_checkpoint(root / "tiny", seed=0)
    bad_model = shutil.copytree(model, root / "tiny-bad-config")
    config = json.loads((bad_model / "config.json").read_text())
    (bad_model / "config.json").write_text(json.dumps({**config, "text_len": -5}))
    images = root / "images"
    images.mkdir()
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(images / f"{index:02d}.png")
    data = (images / "04.png").read_bytes()
    (images / "04.png").write_bytes(data[: len(data) // 2])  # truncated: PIL fails while decoding it
    damaged = bytearray((root / "clip.mp4").read_bytes())
    for index in range(len(damaged) // 3, len(damaged) - 200, 7):
        damaged[index] = (damaged[index] * 31 + 7) % 256
    (root / "damaged.mp4").write_bytes(bytes(damaged))
    (root / "text.mp4").write_text("not a video")
    sidecar = {"config": {"reference": str(root / "clip.mp4"), "prompt": "a ball", "model_dir": str(model),
                          "num_frames": "nine", "height": 48, "width": 64}, "seed": 1}
    (root / "typed.json").write_text(json.dumps(sidecar))
    (root / "garbage.json").write_text("{not json")
    (root / "jobs.jsonl").write_text(json.dumps({"reference": "clip.mp4", "prompt": "a ball"}) + "\n")
    (root / "bad-jobs.jsonl").write_text(json.dumps({"reference": "clip.mp4", "prompt": "a", "seed": -1}) + "\n"
                                         + json.dumps({"reference": "clip.mp4", "prompt": "b",
                                                       "overrides": {"learning_rate": 0.001}}) + "\n")
    return root


def transfer(*options, model="tiny"):
    return ["transfer", "{root}/clip.mp4", "--prompt", "a ball", "--model-dir", f"{{root}}/{model}",
            "--out", "{out}/o.mp4", *SIZE, "--steps", "2", *options]


def batch(*options, manifest="jobs.jsonl"):
    return ["batch", f"{{root}}/{manifest}", "--out", "{out}/batch", "--model-dir", "{root}/tiny", *SIZE, *options]


def flow(*options):
    return ["flow", "{root}/clip.mp4", "--out", "{out}/flow", "--height", "48", "--width", "64", *options]


def evaluate(*options):
    return ["eval", "{root}/clip.mp4", "{root}/clip.mp4", "--grid", "5", *options]


#: (command line, what the error line says); {root} is the inputs' folder, {out} an empty one.
ROWS = {
    # 1. sizes beyond the bound, before anything is allocated
    "height 1600000": (transfer("--height", "1600000"), "at most 16384 pixels a side"),
    "4K frame area x9": (transfer("--height", "10000", "--width", "10000"), "at most 8,294,400 a frame"),
    "frames past RoPE": (transfer("--frames", "4097"), "more than the 4093"),
    "video pixels": (transfer("--frames", "401", "--height", "2160", "--width", "3840"), "at most 671,846,400"),
    "steps 1001": (transfer("--steps", "1001"), "[1, 1000]"),
    "steps 0": (transfer("--steps", "0"), "[1, 1000]"),
    "seed -1": (transfer("--seed", "-1"), "seed must be an integer in [0, 18446744073709551615]"),
    "seed 2**64": (transfer("--seed", str(2**64)), "seed must be an integer in"),
    "flow height": (flow("--height", "1600000"), "16384 pixels a side"),
    "flow frames": (flow("--frames", "100001"), "more than the 4093"),
    "eval grid": (evaluate("--grid", "1000"), "[2, 81]"),
    "eval grid 1": (evaluate("--grid", "1"), "[2, 81]"),
    "cost height": (["bench", "cost", "--height", "1600000"], "16384 pixels a side"),
    "cost frames": (["bench", "cost", "--frames", "100000"], "more than the 4093"),
    "cost steps": (["bench", "cost", "--steps", "5000"], "[1, 1000]"),
    "batch frames": (batch("--frames", "4097"), "more than the 4093"),
    "batch cpus": (batch("--cpus-per-job", "100000"), "--cpus-per-job"),
    "batch workers": (batch("--executor", "ray", "--workers", "0"), "--workers must be an integer >= 1"),
    # 3. numbers that are not finite or out of range
    "cfg 1e30": (transfer("--cfg", "1e30"), "cfg_scale must be in [0, 100]"),
    "cfg nan": (transfer("--cfg", "nan"), "cfg_scale must be a finite number"),
    "cfg inf": (transfer("--cfg", "inf"), "cfg_scale must be a finite number"),
    "cfg negative": (transfer("--cfg", "-1"), "cfg_scale must be in [0, 100]"),
    "strength 0": (transfer("--strength", "0"), "denoising_strength must be in (0, 1]"),
    "strength 1.5": (transfer("--strength", "1.5"), "denoising_strength must be in (0, 1]"),
    "strength nan": (transfer("--strength", "nan"), "denoising_strength must be a finite number"),
    "lr out of range": (transfer("--set", "learning_rate=[0.1,2]"), "learning_rate end must be in [0, 1]"),
    "lr NaN": (transfer("--set", "learning_rate=[NaN,0.1]"), "learning_rate start must be a finite number"),
    "weight decay": (transfer("--set", "weight_decay=-1"), "weight_decay must be in [0, 1]"),
    "shift": (transfer("--set", "shift=0"), "shift must be > 0"),
    "lambda_amf NaN": (transfer("--set", "loss.lambda_amf=NaN"), "lambda_amf must be a finite number"),
    "lambda_win negative": (transfer("--set", "loss.lambda_win=-1"), "lambda_win must be >= 0"),
    "alpha": (transfer("--set", "loss.alpha=2"), "alpha must be a number in [0, 1]"),
    "tau inf": (transfer("--set", "extractor.tau=Infinity"), "tau must be a finite number"),
    "guided fraction": (transfer("--set", "scheduler.guided_fraction=1.5"), "guided_fraction must be in [0, 1]"),
    "every 0": (transfer("--set", "scheduler.every=0"), "every must be an integer >= 1"),
    "min-motion nan": (evaluate("--min-motion", "nan"), "--min-motion (pixels) must be a finite number"),
    "min-motion negative": (evaluate("--min-motion", "-1"), "--min-motion (pixels) must be >= 0"),
    "tflops nan": (["bench", "cost", "--tflops", "nan"], "--tflops must be a finite number"),
    "flow tau": (flow("--tau", "nan"), "tau must be a finite number"),
    "gpus nan": (batch("--executor", "ray", "--gpus-per-job", "nan"), "--gpus-per-job must be a finite number"),
    # 4. mistyped values, files with wrong contents, unknown options, paths: named, before the model loads
    "lr scalar": (transfer("--set", "learning_rate=0.001"), "learning_rate is a (start, end) pair"),
    "iterations abc": (transfer("--set", "inner_iterations=abc"), "inner_iterations must be an integer"),
    "block 99": (transfer("--set", "block=99"), "captures block 99 but the backbone has 16 blocks"),
    "block -1": (transfer("--set", "block=-1"), "block must be an integer >= 0"),
    "unknown field": (transfer("--set", "nosuch=1"), "unknown strategy field 'nosuch'"),
    "unknown component option": (transfer("--set", "extractor.nosuch=1"), "invalid options for extractor"),
    "component option type": (transfer("--set", "extractor.window=abc"), "window"),
    "sidecar types": (["transfer", "--config", "{root}/typed.json", "--out", "{out}/o.mp4"],
                      "typed.json: num_frames must be an integer, got str 'nine'"),
    "sidecar not JSON": (["transfer", "--config", "{root}/garbage.json", "--out", "{out}/o.mp4"],
                         "garbage.json is not a fastvmt run sidecar"),
    "config.json text_len": (transfer(model="tiny-bad-config"),
                             "config.json: text_len must be an integer in [1, 4096]"),
    "corrupt image": (["transfer", "{root}/images", "--prompt", "a ball", "--model-dir", "{root}/tiny", "--out",
                       "{out}/o.mp4", *SIZE], "cannot read image"),
    "corrupt image flow": (["flow", "{root}/images", "--out", "{out}/flow"], "04.png"),
    "tracker option": (evaluate("--tracker-option", "nosuch=1"), "invalid options for tracker 'lk'"),
    "tracker option type": (evaluate("--tracker-option", "window=abc"), "window"),
    "tracker": (evaluate("--tracker", "nosuch"), "unknown tracker 'nosuch'"),
    "eval damaged video": (["eval", "{root}/damaged.mp4", "{root}/clip.mp4"], "cannot read '{root}/damaged.mp4'"),
    "eval not a video": (["eval", "{root}/clip.mp4", "{root}/text.mp4"], "'{root}/text.mp4' as a video: "),
    "backend": (transfer("--backend", "nosuch"), "unknown backend 'nosuch'"),
    "device": (transfer("--device", "gpu"), "unknown device 'gpu'"),
    "device index": (transfer("--device", "cuda:99"), "device 'cuda:99'"),
    "dtype": (transfer("--dtype", "int8"), "dtype must be one of"),
    "output suffix": (["transfer", "{root}/clip.mp4", "--prompt", "x", "--model-dir", "{root}/tiny", "--out",
                       "{out}/o.avi", *SIZE], ".mp4"),
    "unparsable int": (transfer("--frames", "abc"), "Invalid value for '--frames'"),
    "unknown option": (transfer("--nosuch"), "No such option: --nosuch"),
    "manifest lines": (batch(manifest="bad-jobs.jsonl"), "2 problem(s) in manifest"),
    "backends dtype": (["backends", "--dtype", "int8"], "--dtype 'int8' is not a torch floating dtype"),
    "demo seed": (["demo", "--seed", "-1", "--out", "{out}/demo"], "seed must be an integer in"),
}


@pytest.fixture
def no_model_loads(monkeypatch):
    """Any model load fails the test: every row must be refused before one."""
    from fastvmt.backbones.wan import WanBackbone

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(WanBackbone, "from_pretrained", classmethod(refuse))


@pytest.mark.parametrize("row", list(ROWS))
def test_bad_input_is_one_error_line_exit_2_and_writes_nothing(row, inputs, tmp_path, no_model_loads):
    args, message = ROWS[row]
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(app, [arg.format(root=inputs, out=out) for arg in args])
    assert result.exit_code == 2, (row, result.output, result.exception)
    assert "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message.format(root=inputs) in errors[0], (row, result.output)
    assert not any(banner in result.output for banner in ("ffmpeg version", "built with", "configuration:")), row
    assert list(out.iterdir()) == [], row


def test_the_real_process_prints_one_line_too(inputs, tmp_path):
    """Outside the test runner (no in-process typing hooks): the headline cases as a user sees them."""
    import subprocess
    import sys

    for args, message in (ROWS["height 1600000"], ROWS["cfg 1e30"], ROWS["sidecar types"]):
        command = [sys.executable, "-m", "fastvmt", *(arg.format(root=inputs, out=tmp_path) for arg in args)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert done.returncode == 2 and done.stdout == "", (command, done.stdout, done.stderr)
        assert done.stderr.splitlines() == [done.stderr.strip()] and message in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_video_image_folder_with_one_size_reads_and_a_truncated_image_is_named(inputs, tmp_path):
    from fastvmt.io import VideoError, read_video

    good = shutil.copytree(inputs / "images", tmp_path / "images")
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(good / "04.png")
    assert read_video(good).frames.shape == (9, 48, 64, 3)
    (good / "04.png").write_bytes(b"not an image")
    with pytest.raises(VideoError, match="04.png"):
        read_video(good)
