"""VBench's dimensions (fastvmt.metrics.vbench) with tiny random stand-in models: each dimension's defining
property on synthetic videos, the missing-weights errors, and ``fastvmt eval --vbench-dir``."""

import json
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fastvmt.cli import app
from fastvmt.io import write_video
from fastvmt.metrics.vbench import DIMENSIONS, LAYOUT, VBenchScorer, consistency
from tests.support.batch_inputs import clips  # noqa: F401  (fixture)
from tests.support.tiny_vbench import tiny_vbench  # noqa: F401  (fixture)


def moving_square(frames=10, height=40, width=56):
    """A bright square sliding right, one pixel a frame, over a fixed random background."""
    rng = np.random.default_rng(1)
    background = rng.integers(0, 120, (height, width, 3), dtype=np.uint8)
    video = np.repeat(background[None], frames, axis=0)
    for t in range(frames):
        video[t, 12:28, 8 + 2 * t : 24 + 2 * t] = (250, 40, 40)
    return video


@pytest.fixture(scope="module")
def scorer(tiny_vbench):
    return VBenchScorer(tiny_vbench)


def test_consistency_follows_vbench_definition():
    assert consistency(torch.ones(5, 3)) == pytest.approx(1.0)
    # f0=e0, f1=e1 (orthogonal to both), f2=e0 again: frame 1 scores 0, frame 2 scores (0 + 1) / 2
    features = torch.eye(3)[[0, 1, 0]]
    assert consistency(features) == pytest.approx(0.25)
    # negative cosines count as 0, not below
    assert consistency(torch.tensor([[1.0, 0.0], [-1.0, 0.0]])) == 0.0
    with pytest.raises(ValueError, match="at least 2 frames"):
        consistency(torch.ones(1, 3))


def test_a_still_video_is_perfectly_consistent_and_a_shuffled_one_less(scorer):
    video = moving_square()
    still = np.repeat(video[:1], len(video), axis=0)
    shuffled = video[[0, 9, 2, 7, 4, 5, 3, 8, 1, 6]]
    for name in ("subject_consistency", "background_consistency"):
        measure = getattr(scorer, name)
        assert measure(still) == pytest.approx(1.0, abs=1e-5), name
        ordered, mixed = measure(video), measure(shuffled)
        assert 0 <= mixed < ordered < 1, (name, ordered, mixed)
    # float (T, 3, H, W) in [-1, 1] videos score as their uint8 frames
    as_float = torch.from_numpy(video).permute(0, 3, 1, 2).float() / 127.5 - 1
    assert scorer.subject_consistency(as_float) == pytest.approx(scorer.subject_consistency(video), abs=1e-3)


def test_aesthetic_quality_is_the_head_score_over_ten_averaged_over_frames(tmp_path, tiny_vbench):
    root = shutil.copytree(tiny_vbench, tmp_path / "vbench")
    head = torch.nn.Linear(24, 1)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(6.5)
    torch.save(head.state_dict(), root / "aesthetic_model/emb_reader/sa_0_4_vit_l_14_linear.pth")
    scorer = VBenchScorer(root, dimensions=["aesthetic_quality"])
    assert scorer.score(moving_square()) == {"aesthetic_quality": pytest.approx(0.65)}
    with torch.no_grad():
        head.bias.zero_()
        head.weight.fill_(1.0)
    torch.save(head.state_dict(), root / "aesthetic_model/emb_reader/sa_0_4_vit_l_14_linear.pth")
    # a unit embedding summed: frames differ, so the mean over frames lies between the frames' extremes
    video = moving_square()
    per_frame = [VBenchScorer(root, dimensions=["aesthetic_quality"]).aesthetic_quality(video[t : t + 1])
                 for t in (0, 5, 9)]
    mean = VBenchScorer(root, dimensions=["aesthetic_quality"]).aesthetic_quality(video[[0, 5, 9]])
    assert mean == pytest.approx(sum(per_frame) / 3, abs=1e-5) and all(abs(value) <= 0.5 for value in per_frame)


def test_a_wrong_aesthetic_head_is_refused(tmp_path, tiny_vbench):
    root = shutil.copytree(tiny_vbench, tmp_path / "vbench")
    torch.save(torch.nn.Linear(16, 1).state_dict(), root / "aesthetic_model/emb_reader/sa_0_4_vit_l_14_linear.pth")
    with pytest.raises(ValueError, match=r"nn.Linear\(24, 1\)"):
        VBenchScorer(root, dimensions=["aesthetic_quality"])


def test_missing_weights_are_named_with_what_to_place(tmp_path, tiny_vbench):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        VBenchScorer(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError) as error:
        VBenchScorer(tmp_path / "empty")
    assert all(entry in str(error.value) for entry in LAYOUT) and "downloads no weights" in str(error.value)
    partial = shutil.copytree(tiny_vbench, tmp_path / "partial")
    shutil.rmtree(partial / "dino_model")
    assert VBenchScorer(partial, dimensions=["background_consistency"]).dimensions == ("background_consistency",)
    with pytest.raises(FileNotFoundError, match="lacks dino_model/dino-vitb16 "):
        VBenchScorer(partial)
    (partial / "clip_model" / "clip-vit-large-patch14" / "model.safetensors").unlink()  # config.json alone
    with pytest.raises(FileNotFoundError, match="lacks clip_model/clip-vit-large-patch14 "):
        VBenchScorer(partial, dimensions=["aesthetic_quality"])
    shutil.copytree(partial / "clip_model" / "clip-vit-base-patch32", partial / "dino_model" / "dino-vitb16")
    with pytest.raises(ValueError, match="expected a transformers 'vit' model .* names model_type 'clip'"):
        VBenchScorer(partial, dimensions=["subject_consistency"])
    with pytest.raises(ValueError, match="dimensions are .*motion_smoothness; got \\['dynamic_degree'\\]"):
        VBenchScorer(tiny_vbench, dimensions=["dynamic_degree"])


def test_eval_adds_the_vbench_dimensions(tmp_path, clips, tiny_vbench):
    video = clips / "pan_right.mp4"  # 48x64: too small for AMT-S, motion smoothness is not scored and says why
    result = CliRunner().invoke(app, ["eval", str(video), str(video), "--grid", "5", "--vbench-dir",
                                      str(tiny_vbench), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert all(0 <= record[name] <= 1 for name in DIMENSIONS[:2]) and np.isfinite(record["aesthetic_quality"])
    assert record["motion_smoothness"] is None and "113 pixels" in record["not_scored"]["motion_smoothness"]
    large = tmp_path / "large.mp4"
    write_video(large, moving_square(frames=5, height=128, width=128), fps=8)
    result = CliRunner().invoke(app, ["eval", str(large), str(large), "--grid", "5", "--vbench-dir",
                                      str(tiny_vbench)])
    assert result.exit_code == 0, result.output
    smoothness = [line for line in result.output.splitlines() if line.startswith("motion smoothness (generated)")]
    assert len(smoothness) == 1 and 0 <= float(smoothness[0].split(": ")[1]) <= 1, result.output
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, ["eval", str(video), str(video), "--vbench-dir", str(tmp_path / "empty")])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "dino_model/dino-vitb16" in lines[0]
