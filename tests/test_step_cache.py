"""The step cache (docs/algorithm.md#step-cache): diffsynth's TeaCache on the denoising velocities after the last
guided step, one cache per CFG branch, fresh every run (tiny Wan, float32).

The tiny random DiT's timestep modulation changes by 30-60 % a step, far outside the range the 1.3B coefficients
were fitted on, where their polynomial is negative: with them every step TeaCache may skip is skipped. The tests
that vary the threshold borrow the I2V-14B-720P coefficients, whose polynomial is positive there (hundreds), so a
tiny threshold skips nothing and a huge one everything allowed.
"""

import numpy as np
import pytest
import torch

from fastvmt.backbones.patch import PatchBackbone
from fastvmt.backbones.wan import WanBackbone
from fastvmt.generation.pipeline import MotionTransferPipeline
from fastvmt.strategies.components import resolve_strategy
from tests.support.tiny_wan import tiny_wan_dir  # noqa: F401  (fixture)

STEPS = 6
#: Coefficients positive over the tiny DiT's modulation changes (see the module docstring).
POSITIVE_COEFFICIENTS = "Wan2.1-I2V-14B-720P"
#: A cache that skips nothing runs the very same ops as no cache: equal up to float32 rounding.
TOLERANCE = {"rtol": 1e-6, "atol": 1e-6}


@pytest.fixture(scope="module")
def reference():
    return np.random.default_rng(0).integers(0, 256, size=(9, 48, 64, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def tiny(tiny_wan_dir):
    def load(**options):
        return WanBackbone.from_pretrained(tiny_wan_dir, device="cpu", dtype=torch.float32, **options)

    return load


@pytest.fixture(scope="module")
def backbone(tiny):
    return tiny(teacache_model_id=POSITIVE_COEFFICIENTS)


@pytest.fixture(scope="module")
def plain(backbone, reference):
    """The guided run without step cache."""
    return _run(backbone, reference, None)


def _run(backbone, reference, step_cache, strategy="fastvmt", **options):
    strategy = resolve_strategy(strategy, {"step_cache": step_cache})
    return MotionTransferPipeline(backbone, strategy)(reference, "a tiny test", num_inference_steps=STEPS,
                                                      progress=False, **options)


def _guided_steps(strategy="fastvmt"):
    from fastvmt.strategies.components import build_components

    scheduler = build_components(resolve_strategy(strategy)).scheduler
    return [k for k in range(STEPS) if scheduler.is_guided(k, STEPS)]


def test_a_tiny_threshold_caches_nothing_and_equals_the_uncached_run(backbone, reference, plain):
    cached = _run(backbone, reference, 1e-9)
    unguided = STEPS - 1 - max(_guided_steps())
    assert plain.report.step_cache is None
    assert cached.report.step_cache["steps"] == unguided > 0
    assert cached.report.step_cache["branches"] == {branch: {"computed": unguided, "cached": 0}
                                                    for branch in ("positive", "negative")}
    assert cached.report.counts == plain.report.counts
    torch.testing.assert_close(cached.latents, plain.latents, **TOLERANCE)


def test_a_huge_threshold_caches_all_but_the_first_and_last_unguided_step_and_never_a_guided_one(
        backbone, reference, plain, monkeypatch):
    guided = _guided_steps()
    calls = []
    velocity = type(backbone).velocity

    def recorded(self, latents, timestep, *args, cache=None, **kwargs):
        calls.append((timestep, cache is not None))
        return velocity(self, latents, timestep, *args, cache=cache, **kwargs)

    monkeypatch.setattr(type(backbone), "velocity", recorded)
    result = _run(backbone, reference, 1e9)
    unguided = STEPS - 1 - max(guided)
    cached = unguided - 2  # TeaCache always computes its first and last call
    assert result.report.step_cache["branches"] == {branch: {"computed": 2, "cached": cached}
                                                    for branch in ("positive", "negative")}
    schedule_calls = [with_cache for _, with_cache in calls[-STEPS:]]  # the denoising velocity of each step
    assert schedule_calls == [k > max(guided) for k in range(STEPS)]
    assert not any(with_cache for _, with_cache in calls[:-STEPS])  # guidance and reference readings: no cache
    num_blocks = backbone.num_blocks
    assert plain.report.counts.blocks_forward - result.report.counts.blocks_forward == 2 * cached * num_blocks
    assert not torch.allclose(result.latents, plain.latents)  # cached residuals change the result


def test_merged_cfg_has_one_cache_for_both_branches(tiny, reference):
    merged = tiny(teacache_model_id=POSITIVE_COEFFICIENTS, cfg_batch=True)
    result = _run(merged, reference, 1e9, strategy="no_transfer")
    (name,) = result.report.step_cache["branches"]
    assert name == "merged"


def test_every_run_starts_a_fresh_cache(backbone, reference):
    first, second = (_run(backbone, reference, 1e9, strategy="no_transfer") for _ in range(2))
    assert first.report.step_cache == second.report.step_cache
    assert first.report.step_cache["branches"]["positive"] == {"computed": 2, "cached": STEPS - 2}
    assert torch.equal(first.latents, second.latents)  # same seed, same path: nothing carried over


def test_the_borrowed_1p3b_coefficients_cache_every_step_allowed_on_the_tiny_dit(tiny, reference):
    borrowed = tiny(teacache_model_id="Wan2.1-T2V-1.3B")
    result = _run(borrowed, reference, 1e-9, strategy="no_transfer")
    assert result.report.step_cache["branches"]["positive"] == {"computed": 2, "cached": STEPS - 2}


def test_a_dit_of_no_released_size_and_the_patch_backbone_have_no_coefficients(tiny, reference):
    with pytest.raises(ValueError, match="matches no released Wan2.1 T2V DiT.*teacache_model_id"):
        MotionTransferPipeline(tiny(), resolve_strategy("fastvmt", {"step_cache": 0.2}))
    with pytest.raises(ValueError, match="PatchBackbone backbone has no step cache"):
        MotionTransferPipeline(PatchBackbone(), resolve_strategy("fastvmt", {"step_cache": 0.2}))
    with pytest.raises(ValueError, match="not a supported TeaCache model id"):
        tiny(teacache_model_id="Wan2.1-T2V-2B")


@pytest.mark.parametrize("threshold", [0, -0.1, float("nan"), "0.2", True])
def test_a_bad_threshold_is_refused_by_the_strategy(threshold):
    with pytest.raises(ValueError, match="step_cache must be .*TeaCache's threshold"):
        resolve_strategy("fastvmt", {"step_cache": threshold})


def test_the_paper_presets_have_no_step_cache():
    for name in ("fastvmt", "ditflow", "flowmotion"):
        assert resolve_strategy(name).step_cache is None


def test_the_cli_says_the_tiny_dit_has_no_coefficients(tiny_wan_dir, tmp_path):
    from typer.testing import CliRunner

    from fastvmt.cli import app
    from fastvmt.io import write_video
    from fastvmt.synthetic import moving_scene

    write_video(tmp_path / "scene.mp4", moving_scene(9, 48, 64, seed=3, pan=(0.0, 2.0))[0], fps=16)
    result = CliRunner().invoke(app, [
        "transfer", str(tmp_path / "scene.mp4"), "--prompt", "a ball", "--model-dir", str(tiny_wan_dir),
        "--out", str(tmp_path / "run.mp4"), "--dtype", "float32", "--device", "cpu", "--step-cache", "0.2",
        "--frames", "9", "--height", "48", "--width", "64", "--steps", "2", "--no-progress"])
    assert result.exit_code == 2, result.output
    assert "error: the step cache needs TeaCache coefficients" in result.output
    assert not (tmp_path / "run.mp4").exists()
    bad = CliRunner().invoke(app, ["transfer", str(tmp_path / "scene.mp4"), "--prompt", "a ball", "--model-dir",
                                   str(tiny_wan_dir), "--step-cache", "-1"])
    assert bad.exit_code == 2 and "step_cache must be" in bad.output
