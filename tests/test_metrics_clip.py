"""CLIP scores: local-weights contract and the properties any CLIP model gives (tiny random model)."""

import json

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")

from fastvmt.metrics import ClipScorer  # noqa: E402


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A randomly initialised tiny CLIP with a specials-only tokenizer, saved like a real model directory."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    root = tmp_path_factory.mktemp("tiny_clip")
    config = CLIPConfig(
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                         vocab_size=8, max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(root)
    (root / "vocab.json").write_text(json.dumps({"<|startoftext|>": 0, "<|endoftext|>": 1}))
    (root / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(root / "vocab.json"), str(root / "merges.txt"), model_max_length=16)
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(root)
    return root


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
