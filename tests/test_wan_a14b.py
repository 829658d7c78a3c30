"""Wan2.2 T2V-A14B: two experts loaded from the released layout, the switch at the boundary timestep for the
velocity and the guidance features alike, the switch counted in the run's report, and guided runs end to end."""

import inspect
import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from fastvmt.backbones import checkpoint
from fastvmt.backbones.architecture import RELEASED_DITS
from fastvmt.backbones.families import WAN22_T2V_A14B, detect_family
from fastvmt.backbones.forward import capture_qk, dit_forward
from fastvmt.backbones.wan import WanBackbone
from fastvmt.backbones.wan_a14b import A14B_BOUNDARY, I2V_A14B_BOUNDARY, WanA14BBackbone, WanI2VA14BBackbone
from fastvmt.cli import app
from fastvmt.generation.pipeline import MotionTransferPipeline
from fastvmt.io import write_video
from fastvmt.strategies.presets import CAPTURED_BLOCK
from fastvmt.synthetic import moving_scene
from tests.support.tiny_wan import tiny_wan_dir  # noqa: F401  (fixture)
from tests.support.tiny_wan_a14b import tiny_a14b_dir, tiny_i2v_a14b_dir  # noqa: F401  (fixtures)

FRAMES, HEIGHT, WIDTH = 9, 48, 64


@pytest.fixture(scope="module")
def backbone(tiny_a14b_dir):
    return WanBackbone.from_pretrained(tiny_a14b_dir, dtype=torch.float32, device="cpu")


def test_released_layout_loads_both_experts_and_names_missing_ones(tiny_a14b_dir, backbone, tmp_path):
    assert isinstance(backbone, WanA14BBackbone) and detect_family(tiny_a14b_dir) is WAN22_T2V_A14B
    high, low = backbone.high_noise_dit.state_dict(), backbone.low_noise_dit.state_dict()
    assert high.keys() == low.keys() and not torch.equal(high["blocks.0.ffn.0.weight"], low["blocks.0.ffn.0.weight"])
    broken = shutil.copytree(tiny_a14b_dir, tmp_path / "broken")
    for path in checkpoint.dit_files(broken / "low_noise_model"):
        path.unlink()
    (broken / checkpoint.VAE_FILE).unlink()
    with pytest.raises(checkpoint.MissingCheckpointFilesError) as error:
        WanBackbone.from_pretrained(broken, dtype=torch.float32, device="cpu")
    message = str(error.value)
    assert "low_noise_model/diffusion_pytorch_model" in message and checkpoint.VAE_FILE in message
    assert "high_noise_model" not in message and "Wan2.2 T2V-A14B" in message


def test_boundary_is_diffsynths():
    from diffsynth.pipelines.wan_video import WanVideoPipeline

    default = inspect.signature(WanVideoPipeline.__call__).parameters["switch_DiT_boundary"].default
    assert A14B_BOUNDARY == default


def test_each_call_is_served_by_the_expert_of_its_timestep(backbone):
    latents = torch.randn(1, 16, 3, 6, 8, generator=torch.Generator().manual_seed(0))
    context = backbone.encode_prompt("a cat")
    before = {kind: dict(calls) for kind, calls in backbone.expert_calls.items()}
    for timestep, expert in ((900.0, backbone.high_noise_dit), (875.0, backbone.high_noise_dit),
                             (874.0, backbone.low_noise_dit), (300.0, backbone.low_noise_dit)):
        t = torch.tensor([timestep])
        expected = dit_forward(expert, latents, t, context)
        torch.testing.assert_close(backbone.velocity(latents, timestep, context), expected)
        q, _ = capture_qk(expert, latents, t, context, CAPTURED_BLOCK)
        features = backbone.features(latents, timestep, context, block=CAPTURED_BLOCK)
        torch.testing.assert_close(features.q.reshape(q.shape), q)
    for kind in ("velocity", "features"):
        for expert in ("high_noise", "low_noise"):
            assert backbone.expert_calls[kind][expert] - before[kind].get(expert, 0) == 2
    assert backbone.dit is backbone.high_noise_dit


def test_the_report_counts_the_denoising_steps_each_expert_served(backbone):
    frames, _ = moving_scene(FRAMES, HEIGHT, WIDTH, seed=3, pan=(0.0, 2.0), object_velocity=(0.5, 1.0))
    timesteps = []
    result = MotionTransferPipeline(backbone, "no_transfer")(
        frames, "a ball", num_inference_steps=6, seed=1, cfg_scale=1.0, progress=False,
        callbacks=[lambda state: timesteps.append(state.timestep)],
    )
    above = sum(timestep >= A14B_BOUNDARY * 1000 for timestep in timesteps)
    assert 0 < above < len(timesteps)  # the run crosses the boundary
    assert result.report.experts["velocity"] == {"high_noise": above, "low_noise": len(timesteps) - above}


@pytest.mark.parametrize("strategy", ["fastvmt", "ditflow"])
def test_guided_transfer_from_the_command_line(tmp_path, tiny_a14b_dir, strategy):
    frames, _ = moving_scene(FRAMES, HEIGHT, WIDTH, seed=3, pan=(0.0, 2.0), object_velocity=(0.5, 1.0))
    reference = write_video(tmp_path / "scene.mp4", frames, fps=16)
    result = CliRunner().invoke(app, [str(a) for a in (
        "transfer", reference, "--prompt", "a ball", "--model-dir", tiny_a14b_dir, "--strategy", strategy,
        "--out", tmp_path / "out.mp4", "--frames", FRAMES, "--height", HEIGHT, "--width", WIDTH, "--steps", 4,
        "--dtype", "float32", "--no-progress", "--cfg", 1, "--set", "inner_iterations=2")])
    assert result.exit_code == 0, result.output
    sidecar = json.loads((tmp_path / "out.json").read_text())
    assert sidecar["counts"]["guided_steps"] > 0
    assert sidecar["experts"]["features"]["high_noise"] > 0 and sidecar["experts"]["velocity"]["low_noise"] > 0


def test_i2v_a14b_experts_read_the_first_frame_as_diffsynth_does_and_switch_at_0_9(tiny_i2v_a14b_dir, tmp_path):
    """I2V-A14B: the released experts' names and shapes (diffsynth's fingerprint of Wan2.2-I2V-A14B), the first-frame
    channels without CLIP features as diffsynth's model_fn_wan_video reads them, the switch at 0.9, a guided run."""
    import dataclasses

    import numpy as np
    from diffsynth.configs import MODEL_CONFIGS
    from diffsynth.core.loader.file import hash_state_dict_keys
    from diffsynth.pipelines.wan_video import model_fn_wan_video
    from PIL import Image

    from fastvmt.backbones.architecture import FIRST_FRAME_MASK_CHANNELS, infer_dit_config
    from fastvmt.backbones.families import WAN22_I2V_A14B
    from fastvmt.backbones.modules import build_dit
    from fastvmt.io.frames import frames_to_tensor

    released = dataclasses.replace(RELEASED_DITS["14B"], in_dim=2 * 16 + FIRST_FRAME_MASK_CHANNELS)
    with torch.device("meta"):
        state = build_dit(released).state_dict()
    assert hash_state_dict_keys(state) in {c["model_hash"] for c in MODEL_CONFIGS if c["model_name"] == "wan_video_dit"}
    assert infer_dit_config({n: tuple(t.shape) for n, t in state.items()}) == released  # no config.json needed

    assert detect_family(tiny_i2v_a14b_dir) is WAN22_I2V_A14B
    backbone = WanBackbone.from_pretrained(tiny_i2v_a14b_dir, dtype=torch.float32, device="cpu")
    assert isinstance(backbone, WanI2VA14BBackbone) and backbone.boundary == I2V_A14B_BOUNDARY
    picture = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    conditioning = backbone.encode_image(frames_to_tensor(picture[None])[0], FRAMES)
    assert conditioning.clip is None
    latents = torch.randn(1, 16, 3, 6, 8, generator=torch.Generator().manual_seed(0))
    context = backbone.encode_prompt("a cat")
    with pytest.raises(RuntimeError, match="conditioned_on"):
        backbone.velocity(latents, 950.0, context)
    with backbone.conditioned_on(conditioning):
        for timestep, expert in ((900.0, backbone.high_noise_dit), (899.0, backbone.low_noise_dit)):
            expected = model_fn_wan_video(expert, latents=latents, timestep=torch.tensor([timestep]), context=context,
                                          y=conditioning.first_frame)
            torch.testing.assert_close(backbone.velocity(latents, timestep, context), expected)

    frames, _ = moving_scene(FRAMES, HEIGHT, WIDTH, seed=3, pan=(0.0, 2.0), object_velocity=(0.5, 1.0))
    reference = write_video(tmp_path / "scene.mp4", frames, fps=16)
    subject = tmp_path / "subject.png"
    Image.fromarray(picture).save(subject)
    result = CliRunner().invoke(app, [str(a) for a in (
        "transfer", reference, "--image", subject, "--prompt", "a ball", "--model-dir", tiny_i2v_a14b_dir,
        "--out", tmp_path / "out.mp4", "--frames", FRAMES, "--height", HEIGHT, "--width", WIDTH, "--steps", 4,
        "--dtype", "float32", "--no-progress", "--cfg", 1, "--set", "inner_iterations=2")])
    assert result.exit_code == 0, result.output
    sidecar = json.loads((tmp_path / "out.json").read_text())
    assert sidecar["counts"]["guided_steps"] > 0 and sum(sidecar["experts"]["velocity"].values()) == 4


def test_the_step_cache_is_refused_before_any_work(backbone):
    from fastvmt.strategies.components import resolve_strategy

    with pytest.raises(ValueError, match="not available on Wan2.2 A14B"):
        MotionTransferPipeline(backbone, resolve_strategy("fastvmt", {"step_cache": 0.1}))


def test_i2v_a14b_transfers_with_ditflow_and_the_image_changes_the_output(tiny_i2v_a14b_dir):
    import numpy as np

    from fastvmt.generation.pipeline import MotionTransferPipeline
    from fastvmt.strategies.components import resolve_strategy

    backbone = WanBackbone.from_pretrained(tiny_i2v_a14b_dir, dtype=torch.float32, device="cpu")
    reference, _ = moving_scene(FRAMES, HEIGHT, WIDTH, seed=3, pan=(0.0, 2.0), object_velocity=(0.5, 1.0))
    pipe = MotionTransferPipeline(backbone, resolve_strategy("ditflow", {"inner_iterations": 2}))
    options = {"num_inference_steps": 4, "seed": 3, "progress": False, "cfg_scale": 1.0}
    first, second = (pipe(reference, "a ball", image=np.random.default_rng(seed).integers(0, 256, (HEIGHT, WIDTH, 3),
                                                                                          dtype=np.uint8), **options)
                     for seed in (10, 11))
    assert first.report.counts.guided_steps > 0 and not first.report.notes
    assert sum(first.report.experts["features"].values()) > 0
    # The same seed and code path: any difference is the image's (the tiny random DiT reads it weakly).
    assert (first.latents - second.latents).abs().max() > 1e-2
