"""Every preset end to end on the tiny random Wan (real diffsynth networks, loaded from disk)."""

import numpy as np
import pytest

from fastvmt.generation.pipeline import MotionTransferPipeline

STEPS = 5  # the first 20% = 1 guided step


@pytest.fixture(scope="module")
def backbone():
    from fastvmt.backbones.tiny import tiny_backbone

    return tiny_backbone(seed=0)


@pytest.fixture(scope="module")
def reference():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(9, 48, 64, 3), dtype=np.uint8)


def run(backbone, reference, strategy, seed=0):
    pipe = MotionTransferPipeline(backbone, strategy)
    return pipe(reference, "a tiny test", num_inference_steps=STEPS, seed=seed, progress=False)


@pytest.mark.parametrize(
    ("strategy", "computed", "reused"), [("fastvmt", 4, 6), ("ditflow", 5, 0), ("no_transfer", 0, 0)]
)
def test_preset_runs_end_to_end(backbone, reference, strategy, computed, reused):
    result = run(backbone, reference, strategy)
    counts = result.report.counts
    assert result.frames.shape == reference.shape and result.frames.dtype == np.uint8
    assert (counts.gradients_computed, counts.gradients_reused) == (computed, reused)
    assert counts.guided_steps == (0 if strategy == "no_transfer" else 1)
    assert counts.steps == STEPS


@pytest.mark.slow
def test_same_seed_is_reproducible_and_seeds_differ(backbone, reference):
    first, again, other = (run(backbone, reference, "fastvmt", seed=s) for s in (1, 1, 2))
    assert np.array_equal(first.frames, again.frames)
    assert not np.array_equal(first.frames, other.frames)


def test_guidance_lowers_the_strategy_loss_on_the_tiny_model(backbone, reference):
    from fastvmt.strategies.components import resolve_strategy

    strategy = resolve_strategy("fastvmt", {"scheduler.every": 1, "learning_rate": (0.05, 0.05)})
    losses = [entry["total"] for entry in run(backbone, reference, strategy).report.losses]
    assert len(losses) == 10
    assert min(losses[-3:]) < losses[0]
