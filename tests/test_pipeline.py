"""The guided sampling loop on a weight-free backbone: counts, seeds, callbacks, input errors."""

import numpy as np
import pytest
import torch

from fastvmt.backbones.patch import PatchBackbone
from fastvmt.generation.pipeline import MotionTransferPipeline

SMALL_FASTVMT = {"extractor.tile": (2, 2), "extractor.window": 3}


def clip(frames=9, height=64, width=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(frames, height, width, 3), dtype=np.uint8)


def pipeline(strategy="fastvmt", **overrides):
    from fastvmt.strategies.components import resolve_strategy

    overrides = {**SMALL_FASTVMT, **overrides} if strategy == "fastvmt" else overrides
    return MotionTransferPipeline(PatchBackbone(), resolve_strategy(strategy, overrides))


def run(pipe, video=None, **kwargs):
    kwargs = {"num_inference_steps": 10, "progress": False, **kwargs}
    return pipe(clip() if video is None else video, "a test prompt", **kwargs)


def test_fastvmt_counts_follow_the_interval_schedule():
    result = run(pipeline("fastvmt"))
    counts = result.report.counts
    assert (counts.steps, counts.guided_steps) == (10, 2)  # the first 20% of 10 steps
    assert (counts.gradients_computed, counts.gradients_reused) == (2 * 4, 2 * 6)
    assert counts.inner_iterations == 20
    assert counts.blocks_backward == 8 * 15  # block 14 and the 14 blocks before it, per computed gradient
    assert result.frames.shape == (9, 64, 64, 3) and result.frames.dtype == np.uint8


def test_ditflow_computes_every_iteration_and_extracts_reference_once():
    pipe = pipeline("ditflow")
    counts = run(pipe).report.counts
    assert (counts.guided_steps, counts.gradients_computed, counts.gradients_reused) == (2, 10, 0)
    assert pipe.backbone.feature_calls == 1 + 10 + 2  # reference once, one per computed gradient, the motion check


def test_no_transfer_captures_attention_features_only_for_the_motion_check():
    pipe = pipeline("no_transfer")
    counts = run(pipe).report.counts
    assert counts.guided_steps == counts.gradients_computed == 0
    assert pipe.backbone.feature_calls == 2  # the reference's and the output's, after sampling


def test_same_seed_same_output_other_seed_differs():
    first, again, other = (run(pipeline(), seed=s) for s in (3, 3, 4))
    assert np.array_equal(first.frames, again.frames)
    assert not np.array_equal(first.frames, other.frames)


def test_guidance_lowers_the_loss_within_a_guided_step():
    losses = run(pipeline("fastvmt", inner_iterations=10, **{"scheduler.every": 1})).report.losses
    first_step = [entry["total"] for entry in losses if entry["step"] == 0]
    assert first_step[-1] < first_step[0]


def test_callbacks_see_every_step_and_can_replace_latents():
    seen = []

    def zero_after_last(state):
        seen.append((state.step, state.guided))
        return torch.zeros_like(state.latents) if state.step == state.num_steps - 1 else None

    result = run(pipeline(), callbacks=[zero_after_last])
    assert seen == [(k, k < 2) for k in range(10)]
    assert torch.count_nonzero(result.latents) == 0


def test_report_records_config_and_phases():
    report = run(pipeline(), seed=7).report
    assert report.seed == 7
    assert report.config["strategy"]["name"] == "fastvmt"
    assert report.config["strategy"]["extractor"]["options"]["tile"] == (2, 2)
    assert {"encode", "reference_features", "guidance", "denoise", "decode"} <= set(report.seconds)
    assert report.versions["torch"] == torch.__version__.split("+")[0] or report.versions["torch"] == torch.__version__


@pytest.mark.parametrize(
    ("video", "prompt", "message"),
    [
        (clip(frames=8), "p", "4k\\+1"),
        (clip(height=72), "p", "multiple of 16"),
        (clip(), "   ", "prompt must be a non-empty"),
        (clip(height=48), "p", "tile 2x2 does not divide"),  # 3x4 token grid
        (clip().astype(np.float32), "p", "uint8"),
    ],
)
def test_bad_input_fails_before_any_model_work(video, prompt, message):
    pipe = pipeline()
    with pytest.raises((ValueError, TypeError), match=message):
        pipe(video, prompt, num_inference_steps=10, progress=False)
    assert pipe.backbone.feature_calls == pipe.backbone.velocity_calls == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"learning_rat": (1.0, 1.0)}, "unknown strategy field 'learning_rat'"),
        ({"extractor.windw": 3}, "invalid options for extractor 'windowed_amf'"),
        ({"extractor.window": 4}, "window"),
        ({"denoising_strength": 0.0}, "denoising_strength"),
        ({"block": 30}, "block 30 but the backbone has 30 blocks"),
        ({"scheduler.every": 0}, "every"),
    ],
)
def test_invalid_strategy_overrides_fail_at_construction(overrides, message):
    with pytest.raises(ValueError, match=message):
        pipeline("fastvmt", **overrides)


def test_unknown_strategy_lists_available():
    with pytest.raises(LookupError, match="available: .*ditflow.*fastvmt.*no_transfer"):
        MotionTransferPipeline(PatchBackbone(), "fastvm")


def test_expected_size_mismatch_names_the_fix():
    with pytest.raises(ValueError, match="num_frames=17 but the reference video has 9.*read_video"):
        run(pipeline(), num_frames=17)
