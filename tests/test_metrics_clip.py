"""CLIP scores: local-weights contract and the properties any CLIP model gives (tiny random model)."""

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")

from fastvmt.metrics import ClipScorer  # noqa: E402
from tests.support.tiny_clip import tiny_clip  # noqa: E402,F401  (fixture)


def test_missing_weights_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="local CLIP model directory"):
        ClipScorer()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ClipScorer(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="config.json"):
        ClipScorer(tmp_path)


def test_still_video_is_perfectly_consistent_and_noise_is_not(tiny_clip):
    scorer = ClipScorer(tiny_clip)
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    still = np.stack([frame] * 4)
    noise = rng.integers(0, 256, (4, 40, 48, 3), dtype=np.uint8)
    assert scorer.temporal_consistency(still) == pytest.approx(1.0, abs=1e-5)
    assert scorer.temporal_consistency(noise) < 1.0 - 1e-4
    with pytest.raises(ValueError, match="at least 2"):
        scorer.temporal_consistency(still[:1])


def test_text_similarity_is_a_per_frame_mean(tiny_clip):
    scorer = ClipScorer(tiny_clip, batch_size=3)
    rng = np.random.default_rng(1)
    video = rng.integers(0, 256, (5, 40, 48, 3), dtype=np.uint8)
    score = scorer.text_similarity(video, "a dog runs")
    assert -1.0 <= score <= 1.0
    assert scorer.text_similarity(video[::-1].copy(), "a dog runs") == pytest.approx(score, abs=1e-5)
    singles = [scorer.text_similarity(np.stack([f, f]), "a dog runs") for f in video]
    assert score == pytest.approx(np.mean(singles), abs=1e-5)
    with pytest.raises(ValueError, match="empty"):
        scorer.text_similarity(video, "  ")
