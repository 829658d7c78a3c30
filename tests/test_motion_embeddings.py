"""Guidance on the RoPE angles and key/value injection (docs/algorithm.md#motion-embeddings), on the tiny Wan."""

import numpy as np
import pytest
import torch

from fastvmt.generation.pipeline import MotionTransferPipeline
from fastvmt.strategies.components import resolve_strategy
from tests.support.tiny_wan import tiny_wan_dir  # noqa: F401  (fixture)
from tests.support.tiny_wan_i2v import tiny_i2v_dir  # noqa: F401  (fixture)

STEPS = 3  # the first 20% of 3 = 1 guided step
#: An early block of the tiny DiT's 16 keeps the guidance forwards short.
TINY = {"block": 1, "inner_iterations": 3}


@pytest.fixture(scope="module")
def backbone():
    from fastvmt.backbones.tiny import tiny_backbone

    return tiny_backbone(seed=0)


@pytest.fixture(scope="module")
def reference():
    return np.random.default_rng(0).integers(0, 256, size=(9, 48, 64, 3), dtype=np.uint8)


def run(backbone, reference, strategy, prompt="a tiny test", seed=0):
    return MotionTransferPipeline(backbone, strategy)(reference, prompt, num_inference_steps=STEPS, seed=seed,
                                                      progress=False)


@pytest.fixture(scope="module")
def rope_run(backbone, reference):
    strategy = resolve_strategy("ditflow", {**TINY, "target": "rope", "learning_rate": (0.05, 0.05)})
    return run(backbone, reference, strategy)


@pytest.fixture(scope="module")
def plain_run(backbone, reference):
    return run(backbone, reference, resolve_strategy("ditflow", TINY))


def test_rope_target_lowers_the_loss_and_leaves_the_latent_alone(rope_run, plain_run):
    losses = [entry["total"] for entry in rope_run.report.losses]
    counts = rope_run.report.counts
    assert (counts.guided_steps, counts.gradients_computed) == (1, 3)
    assert losses[-1] < 0.95 * losses[0]
    # The first gradient is taken at the same latent and unchanged angles as the latent target's.
    assert losses[0] == pytest.approx(plain_run.report.losses[0]["total"], rel=1e-5)
    assert not torch.allclose(rope_run.latents, plain_run.latents, atol=1e-4)


@pytest.mark.parametrize("preset", ["fastvmt", "fastvmt_flowmotion"])
def test_rope_target_works_with_windowed_extractors_and_interval_schedules(backbone, reference, preset):
    strategy = resolve_strategy(preset, {"block": 1, "inner_iterations": 4, "target": "rope",
                                         "learning_rate": (0.05, 0.05)})
    result = run(backbone, reference, strategy)
    losses = [entry["total"] for entry in result.report.losses]
    counts = result.report.counts
    assert (counts.gradients_computed, counts.gradients_reused) == (2, 2)  # interval(3): iterations 0 and 3
    assert losses[1] < losses[0]


def test_rope_target_gradients_survive_guidance_checkpointing(backbone, reference, rope_run):
    strategy = resolve_strategy("ditflow", {**TINY, "target": "rope", "learning_rate": (0.05, 0.05),
                                            "guidance_checkpointing": True})
    checkpointed = run(backbone, reference, strategy)
    # Recomputed blocks see the same angle offsets: the same losses up to float rounding.
    assert [entry["total"] for entry in checkpointed.report.losses] == pytest.approx(
        [entry["total"] for entry in rope_run.report.losses], rel=1e-4)


def test_rope_angles_are_warm_started_across_guided_steps(backbone, reference, monkeypatch):
    from fastvmt.generation.embeddings import AttentionControl

    seen = []
    original_finish = AttentionControl.finish_step

    def finish(control):
        seen.append(control.angles.clone())
        original_finish(control)

    strategy = resolve_strategy("ditflow", {**TINY, "target": "rope", "inner_iterations": 1,
                                            "scheduler.guided_fraction": 1.0, "learning_rate": (0.05, 0.05)})
    monkeypatch.setattr(AttentionControl, "finish_step", finish)
    result = MotionTransferPipeline(backbone, strategy)(reference, "a tiny test", num_inference_steps=2, seed=0,
                                                        progress=False)
    assert result.report.counts.guided_steps == 2 and len(seen) == 2
    # One Adam step moves every angle by about the learning rate: the second step starts where the first ended.
    assert (seen[1] - seen[0]).abs().max() <= 0.05 * 1.01
    assert seen[1].abs().max() > 0.05 * 1.5


def test_kv_injection_changes_the_output_and_is_counted(backbone, reference, plain_run):
    from fastvmt.strategies.presets import DITFLOW_FULL

    assert DITFLOW_FULL.kv_injection == (0,)
    result = run(backbone, reference, DITFLOW_FULL.override(**TINY))
    counts = result.report.counts
    assert counts.kv_reference_reads == counts.guided_steps == 1
    # Block 0 is injected in every guidance capture and both classifier-free guidance passes of the guided step.
    assert counts.kv_injected_calls == counts.gradients_computed + 2
    assert plain_run.report.counts.kv_injected_calls == 0
    assert not torch.allclose(result.latents, plain_run.latents, atol=1e-5)


def test_the_patch_backbone_refuses_rope_and_injection_clearly():
    from fastvmt.backbones.patch import PatchBackbone

    for override, named in (({"target": "rope"}, "'rope' guidance target"), ({"kv_injection": [0]}, "kv_injection")):
        with pytest.raises(ValueError, match=f"{named}.*PatchBackbone has none"):
            MotionTransferPipeline(PatchBackbone(), resolve_strategy("fastvmt", override))


def test_rope_needs_an_extractor_that_reads_attention(backbone):
    with pytest.raises(ValueError, match="target='rope' needs an extractor that reads attention"):
        MotionTransferPipeline(backbone, resolve_strategy("flowmotion", {"target": "rope"}))


def test_strategy_fields_check_their_values():
    strategy = resolve_strategy("fastvmt", {"kv_injection": [3, 0]})
    assert strategy.kv_injection == (0, 3) and strategy.target == "latent"
    for override in ({"target": "embedding"}, {"kv_injection": [0, 0]}, {"kv_injection": 0},
                     {"kv_injection": [-1]}):
        with pytest.raises(ValueError):
            resolve_strategy("fastvmt", override)
    with pytest.raises(ValueError, match="injects keys and values into block 40"):
        resolve_strategy("fastvmt", {"kv_injection": [40]}).check_block(30)


# -- motion files ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def motion_path(rope_run, tmp_path_factory):
    from fastvmt.generation.motion_file import save_motion

    return save_motion(rope_run.motion, tmp_path_factory.mktemp("motion") / "motion.safetensors")


def replay_pipeline(backbone, motion):
    from fastvmt.strategies.spec import Strategy

    return MotionTransferPipeline(backbone, Strategy.from_dict(motion.strategy))


def test_a_saved_motion_replays_its_run_and_transfers_to_a_new_prompt_without_gradients(
        backbone, rope_run, motion_path):
    from fastvmt.generation.motion_file import load_motion

    motion = load_motion(motion_path)
    assert motion.guided_steps == (0,) and motion.backbone["family"] == "WanBackbone"
    assert torch.equal(motion.angles, rope_run.motion.angles) and motion.angles.abs().max() > 0
    pipe = replay_pipeline(backbone, motion)
    again = pipe.transfer_motion(motion, "a tiny test", seed=0, progress=False)
    # The same prompt and seed run the saving run's denoising path: equal up to float rounding (1e-6 stated).
    torch.testing.assert_close(again.latents, rope_run.latents, atol=1e-6, rtol=0)
    assert np.abs(again.frames.astype(int) - rope_run.frames.astype(int)).max() <= 1
    other = pipe.transfer_motion(motion, "a different prompt", seed=0, progress=False)
    for result in (again, other):
        counts = result.report.counts
        assert (counts.gradients_computed, counts.guided_steps, counts.blocks_backward) == (0, 0, 0)
        assert counts.steps == STEPS
    assert not torch.allclose(other.latents, again.latents, atol=1e-4)


def test_motion_files_for_another_backbone_grid_or_schedule_are_refused(backbone, motion_path):
    import dataclasses

    from fastvmt.generation.motion_file import MotionFileError, load_motion
    from fastvmt.interfaces import TokenGrid

    motion = load_motion(motion_path)
    pipe = replay_pipeline(backbone, motion)
    with pytest.raises(MotionFileError, match="another step schedule"):
        pipe.transfer_motion(motion, "x", num_inference_steps=STEPS + 1, progress=False)
    with pytest.raises(MotionFileError, match="another step schedule"):
        MotionTransferPipeline(backbone, pipe.strategy.override(shift=3.0)).transfer_motion(motion, "x", progress=False)
    with pytest.raises(MotionFileError, match="another backbone"):
        dataclasses.replace(motion, backbone={**motion.backbone, "heads": 40}).check_compatible(
            backbone, motion.grid, motion.sigmas)
    with pytest.raises(MotionFileError, match="token grid"):
        motion.check_compatible(backbone, TokenGrid(3, 3, 5), motion.sigmas)


def test_corrupt_or_hostile_motion_files_are_refused(motion_path, tmp_path):
    import json
    import pickle

    from safetensors.torch import save_file

    from fastvmt.generation.motion_file import MotionFileError, load_motion

    data = motion_path.read_bytes()
    header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])["__metadata__"]["fastvmt_motion"]
    cases = {
        "pickle": pickle.dumps({"angles": [0.0]}),
        "truncated": data[: len(data) // 2],
        "huge header": (2**40).to_bytes(8, "little") + data[8:],
        "empty": b"",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    save_file({"angles": torch.zeros(1, 36, 16), "extra": torch.zeros(1)}, str(tmp_path / "extra"),
              {"fastvmt_motion": header})
    save_file({"angles": torch.zeros(1, 36, 8)}, str(tmp_path / "wrong shape"), {"fastvmt_motion": header})
    save_file({"angles": torch.zeros(1, 36, 16)}, str(tmp_path / "no header"))
    save_file({"angles": torch.zeros(1, 36, 16)}, str(tmp_path / "deep header"), {"fastvmt_motion": "[" * 100_000})
    for name in [*cases, "extra", "wrong shape", "no header", "deep header"]:
        with pytest.raises(MotionFileError, match="not a usable fastvmt motion file"):
            load_motion(tmp_path / name)
    with pytest.raises(MotionFileError, match="does not exist"):
        load_motion(tmp_path / "missing")


def test_saving_needs_a_rope_run_from_pure_noise_and_never_overwrites(rope_run, motion_path):
    from fastvmt.generation.motion_file import check_savable, save_motion

    check_savable(resolve_strategy("ditflow", {"target": "rope"}))
    with pytest.raises(ValueError, match="target='rope'"):
        check_savable(resolve_strategy("ditflow"))
    with pytest.raises(ValueError, match="pure noise"):
        check_savable(resolve_strategy("fastvmt", {"target": "rope"}))
    before = motion_path.read_bytes()
    with pytest.raises(FileExistsError):
        save_motion(rope_run.motion, motion_path)
    assert motion_path.read_bytes() == before


def test_a_motion_replay_uses_the_step_cache_as_the_saving_run_did(tiny_wan_dir, reference):
    from fastvmt.backbones.wan import WanBackbone
    from fastvmt.strategies.spec import Strategy

    cached = WanBackbone.from_pretrained(tiny_wan_dir, device="cpu", dtype=torch.float32,
                                         teacache_model_id="Wan2.1-I2V-14B-720P")
    strategy = resolve_strategy("ditflow", {**TINY, "target": "rope", "learning_rate": (0.05, 0.05),
                                            "step_cache": 0.5})
    saving = MotionTransferPipeline(cached, strategy)(reference, "a tiny test", num_inference_steps=6, seed=0,
                                                      progress=False)
    replay = MotionTransferPipeline(cached, Strategy.from_dict(saving.motion.strategy)).transfer_motion(
        saving.motion, "a tiny test", seed=0, progress=False)
    unguided = 6 - 1 - max(saving.motion.guided_steps)
    assert replay.report.step_cache == saving.report.step_cache and saving.report.step_cache["steps"] == unguided
    torch.testing.assert_close(replay.latents, saving.latents, atol=1e-6, rtol=0)


def test_an_image_to_video_motion_replays_with_its_first_frame(tiny_i2v_dir, reference):
    from fastvmt.backbones.wan import WanBackbone
    from fastvmt.strategies.spec import Strategy

    backbone = WanBackbone.from_pretrained(tiny_i2v_dir, dtype=torch.float32, device="cpu")
    image = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    strategy = resolve_strategy("ditflow", {**TINY, "target": "rope", "learning_rate": (0.05, 0.05)})
    saving = MotionTransferPipeline(backbone, strategy)(reference, "a tiny test", num_inference_steps=STEPS, seed=0,
                                                        progress=False, image=image)
    pipe = MotionTransferPipeline(backbone, Strategy.from_dict(saving.motion.strategy))
    replay = pipe.transfer_motion(saving.motion, "a tiny test", seed=0, progress=False, image=image)
    torch.testing.assert_close(replay.latents, saving.latents, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="needs the first frame"):
        pipe.transfer_motion(saving.motion, "a tiny test", progress=False)
