"""VBench's motion smoothness: the scoring around an injected interpolator (frame sampling, uint8 truncation,
aggregation), AMT-S through its loader with stand-in weights in the released layout (random; or with its flow,
mask and merge outputs zeroed, which makes it the average of its two frames), and the weight errors."""

import shutil

import numpy as np
import pytest
import torch

from fastvmt.backbones.checkpoint import UnsafeCheckpointError
from fastvmt.metrics.amt import AmtInterpolator, load_amt_s
from fastvmt.metrics.motion_smoothness import motion_smoothness
from fastvmt.metrics.vbench import VBenchScorer
from tests.support.tiny_vbench import write_amt_s


def ramp(frames=7, height=120, width=136, seed=0):
    """A fixed random texture whose brightness rises linearly over time: each frame is its neighbours' mean."""
    texture = np.random.default_rng(seed).integers(0, 100, (height, width, 3))
    return np.stack([texture + 20 * t for t in range(frames)]).astype(np.uint8)


class Recording:
    """An interpolator that records its inputs and returns the frame before, darkened by ``shift`` grey levels
    (half a level above, which the truncation to uint8 drops)."""

    def __init__(self, shift=0):
        self.shift, self.calls = shift, []

    def __call__(self, before, after):
        self.calls.append((before.clone(), after.clone()))
        return (before - (self.shift - 0.5) / 255).clamp(0, 1)


@pytest.mark.parametrize("frames", [7, 8])
def test_odd_frames_are_predicted_from_their_even_neighbours(frames):
    video = ramp(frames, 16, 24)
    recording = Recording()
    score = motion_smoothness(video, recording)
    befores = torch.cat([before for before, _ in recording.calls])
    afters = torch.cat([after for _, after in recording.calls])
    kept = torch.from_numpy(video[0::2]).permute(0, 3, 1, 2).float() / 255
    assert len(recording.calls) == (frames - 1) // 2
    assert torch.equal(befores, kept[:-1]) and torch.equal(afters, kept[1:])
    # copying the frame before misses each odd frame by its 20-level step: the mean absolute error is 20
    assert score == pytest.approx((255 - 20) / 255, abs=1e-12)
    if frames % 2 == 0:  # the last frame has no right neighbour: it is not scored
        changed = video.copy()
        changed[-1] = 255 - changed[-1]
        assert motion_smoothness(changed, Recording()) == score


def test_scores_average_per_frame_errors_and_truncate_predictions_like_vbench():
    video = ramp(7, 16, 24)
    # 5 levels darker, the prediction misses by 25 on every channel except where the clamp at 0 cuts it
    darker = motion_smoothness(video, Recording(shift=5))
    before = video[0:-1:2].astype(float)
    expected = np.mean([np.abs(np.clip(frame - 5, 0, None) - target).mean()
                        for frame, target in zip(before, video[1::2].astype(float))])
    assert darker == pytest.approx((255 - expected) / 255, abs=1e-9)
    assert motion_smoothness(video, Recording(shift=5), pairs_per_call=2) == pytest.approx(darker, abs=1e-12)

    def nearly(before, after):  # 0.9 of a grey level above the true middle frame: truncated to it
        return ((before + after) / 2 + 0.9 / 255).clamp(0, 1)

    assert motion_smoothness(video, nearly) == 1.0


def test_too_short_videos_and_wrong_interpolators_are_refused():
    with pytest.raises(ValueError, match="at least 3 frames"):
        motion_smoothness(ramp(2, 16, 16), Recording())
    with pytest.raises(ValueError, match="interpolator returned shape"):
        motion_smoothness(ramp(3, 16, 16), lambda before, after: before[..., :-1])


@pytest.fixture(scope="module")
def amt_dir(tmp_path_factory):
    """A VBench directory with AMT-S alone (random weights): all that motion smoothness needs."""
    root = tmp_path_factory.mktemp("vbench")
    write_amt_s(root / "amt_model" / "amt-s.pth")
    return root


@pytest.fixture(scope="module")
def averaging_amt(tmp_path_factory):
    return load_amt_s(write_amt_s(tmp_path_factory.mktemp("amt") / "amt-s.pth", seed=1, averaging=True))


def test_amt_s_with_zeroed_flow_outputs_is_the_average_of_its_frames(averaging_amt):
    generator = torch.Generator().manual_seed(0)
    before, after = (torch.rand(2, 3, 120, 136, generator=generator) for _ in range(2))
    middle = AmtInterpolator(averaging_amt)(before, after)  # padded to 128x144 and cropped back
    assert middle.shape == before.shape
    # exact but for float32 rounding in the warp's pixel grid, far below the half grey level (2e-3) that matters
    torch.testing.assert_close(middle, (before + after) / 2, atol=1e-4, rtol=0)


def test_smooth_and_still_videos_score_highest_and_shuffled_ones_lower(averaging_amt):
    interpolate = AmtInterpolator(averaging_amt)
    video = ramp(5)
    still = np.repeat(video[:1], len(video), axis=0)
    shuffled = video[[0, 3, 2, 4, 1]]
    # the average of equal frames, or of a linear ramp's neighbours, is the frame: within VBench's truncation
    assert motion_smoothness(still, interpolate) >= 1 - 1 / 255
    assert motion_smoothness(video, interpolate) >= 1 - 1 / 255
    assert motion_smoothness(shuffled, interpolate) < 1 - 10 / 255


def test_random_amt_s_scores_within_range_through_the_scorer(amt_dir):
    scorer = VBenchScorer(amt_dir, dimensions=["motion_smoothness"])
    video = ramp(5, 128, 128)
    scores = scorer.score(video)
    assert list(scores) == ["motion_smoothness"] and 0 <= scores["motion_smoothness"] <= 1
    assert scorer.unscorable(video) == {}
    small = scorer.unscorable(ramp(5, 112, 200))
    assert "at least 113 pixels a side" in small["motion_smoothness"] and scorer.score(ramp(5, 112, 200)) == {}
    assert "at least 3 frames" in scorer.unscorable(ramp(2, 128, 128))["motion_smoothness"]


def test_missing_or_foreign_amt_weights_get_one_clear_error(tmp_path, amt_dir):
    root = shutil.copytree(amt_dir, tmp_path / "vbench")
    path = root / "amt_model" / "amt-s.pth"
    path.unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks amt_model/amt-s.pth \(AMT-S's released checkpoint"):
        VBenchScorer(root, dimensions=["motion_smoothness"])
    state = torch.load(write_amt_s(path), weights_only=True)["state_dict"]
    dropped = dict(state)
    dropped.pop("comb_block.2.bias")
    dropped["extra.weight"] = torch.zeros(1)
    dropped["decoder1.convblock.2.weight"] = torch.zeros(3, 3)
    torch.save({"state_dict": dropped}, path)
    with pytest.raises(ValueError, match=r"not AMT-S's released checkpoint .*missing 1: comb_block.2.bias; "
                                         r"unexpected 1: extra.weight; mismatched 1: decoder1.convblock.2.weight"):
        VBenchScorer(root, dimensions=["motion_smoothness"])
    torch.save(state, path)  # the bare state dict, not the released file's {"state_dict": ...}
    with pytest.raises(ValueError, match="under 'state_dict'"):
        load_amt_s(path)
    torch.save({"state_dict": Recording()}, path)  # a pickled object: loading it would run code
    with pytest.raises(UnsafeCheckpointError, match="weights_only=True"):
        load_amt_s(path)
