"""Wan2.1 image-to-video: loading the released layout, the conditioning as diffsynth builds and runs it, the released
files' fingerprints, and motion transfer onto an image from Python and from the command line."""

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from fastvmt.backbones import checkpoint
from fastvmt.backbones.architecture import RELEASED_I2V_DIT, ImageEncoderConfig, infer_dit_config
from fastvmt.backbones.families import WAN21_I2V, WAN21_T2V, detect_family
from fastvmt.backbones.wan import WanBackbone
from fastvmt.backbones.wan_i2v import WanI2VBackbone
from fastvmt.cli import app
from fastvmt.generation.pipeline import MotionTransferPipeline
from fastvmt.io import write_video
from fastvmt.io.frames import frames_to_tensor
from fastvmt.strategies.components import resolve_strategy
from fastvmt.synthetic import moving_scene
from tests.support.tiny_wan import tiny_wan_dir  # noqa: F401  (fixture)
from tests.support.tiny_wan_i2v import TINY_I2V_DIT, tiny_i2v_dir  # noqa: F401  (fixture)

FRAMES, HEIGHT, WIDTH = 9, 48, 64
runner = CliRunner()


def load(directory):
    return WanBackbone.from_pretrained(directory, dtype=torch.float32, device="cpu")


@pytest.fixture(scope="module")
def backbone(tiny_i2v_dir):
    return load(tiny_i2v_dir)


def picture(seed, height=HEIGHT, width=WIDTH):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    frames, _ = moving_scene(FRAMES, HEIGHT, WIDTH, seed=3, pan=(0.0, 2.0), object_velocity=(0.5, 1.0))
    return write_video(tmp_path_factory.mktemp("clip") / "scene.mp4", frames, fps=16)


def test_released_layout_loads_as_the_image_to_video_family(tiny_i2v_dir, backbone, tmp_path):
    assert isinstance(backbone, WanI2VBackbone) and backbone.takes_image
    assert backbone.latent_channels == 16 and backbone.dit.in_dim == TINY_I2V_DIT.in_dim
    assert detect_family(tiny_i2v_dir) is WAN21_I2V
    bare = shutil.copytree(tiny_i2v_dir, tmp_path / "bare")
    (bare / checkpoint.CONFIG_FILE).unlink()
    assert detect_family(bare) is WAN21_I2V  # from the DiT's tensor names alone


def test_missing_files_are_named_with_the_family(tiny_i2v_dir, tiny_wan_dir, tmp_path):
    broken = shutil.copytree(tiny_i2v_dir, tmp_path / "broken")
    (broken / checkpoint.IMAGE_ENCODER_FILE).unlink()
    (broken / checkpoint.VAE_FILE).unlink()
    with pytest.raises(checkpoint.MissingCheckpointFilesError) as error:
        load(broken)
    message = str(error.value)
    assert "Wan2.1 image-to-video" in message and checkpoint.IMAGE_ENCODER_FILE in message
    assert checkpoint.VAE_FILE in message and checkpoint.TEXT_ENCODER_FILE not in message
    # A text-to-video directory asked for as image-to-video: the CLIP file is what it lacks.
    with pytest.raises(checkpoint.MissingCheckpointFilesError, match="(?s)models_clip.*Wan2.1 image-to-video"):
        WanI2VBackbone.from_pretrained(tiny_wan_dir, dtype=torch.float32, device="cpu")
    assert detect_family(tiny_wan_dir) is WAN21_T2V


def test_conditioning_is_what_diffsynth_builds_and_runs(backbone):
    """y (mask + first-frame latent) as diffsynth's WanVideoUnit_ImageEmbedderVAE makes it, CLIP features as its
    ImageEmbedderCLIP does, and the velocity as its model_fn_wan_video computes from them."""
    from diffsynth.pipelines.wan_video import (
        WanVideoUnit_ImageEmbedderCLIP,
        WanVideoUnit_ImageEmbedderVAE,
        model_fn_wan_video,
    )

    image = Image.fromarray(picture(1))
    tensor = frames_to_tensor(np.array(image)[None])[0]
    conditioning = backbone.encode_image(tensor, FRAMES)
    pipe = SimpleNamespace(
        vae=backbone.vae, image_encoder=backbone.image_encoder, dit=backbone.dit, device="cpu",
        torch_dtype=torch.float32, load_models_to_device=lambda names: None,
        preprocess_image=lambda im: frames_to_tensor(np.array(im)[None]),
    )
    y = WanVideoUnit_ImageEmbedderVAE().process(pipe, image, None, FRAMES, HEIGHT, WIDTH, False, None, None)["y"]
    clip = WanVideoUnit_ImageEmbedderCLIP().process(pipe, image, None, HEIGHT, WIDTH)["clip_feature"]
    torch.testing.assert_close(conditioning.first_frame, y)
    torch.testing.assert_close(conditioning.clip, clip)

    latents = torch.randn(1, 16, 3, HEIGHT // 8, WIDTH // 8, generator=torch.Generator().manual_seed(0))
    context = backbone.encode_prompt("a cat")
    expected = model_fn_wan_video(backbone.dit, latents=latents, timestep=torch.tensor([700.0]), context=context,
                                  clip_feature=clip, y=y)
    with backbone.conditioned_on(conditioning):
        torch.testing.assert_close(backbone.velocity(latents, 700.0, context), expected)
        features = backbone.features(latents, 700.0, context, block=3)
    other = backbone.encode_image(frames_to_tensor(picture(2)[None])[0], FRAMES)
    with backbone.conditioned_on(other):
        assert not torch.allclose(backbone.features(latents, 700.0, context, block=3).q, features.q)
    with pytest.raises(RuntimeError, match="conditioned_on"):
        backbone.velocity(latents, 700.0, context)


def meta_state(factory):
    with torch.device("meta"):
        return factory().state_dict()


def released_fingerprints(model_name):
    from diffsynth.configs import MODEL_CONFIGS

    return {config["model_hash"] for config in MODEL_CONFIGS if config["model_name"] == model_name}


def test_released_dit_matches_diffsynths_fingerprint_and_clip_sizes_are_inferred():
    """The I2V-14B DiT as released (diffsynth's MD5 of its tensor names and shapes) is what our network has, and its
    sizes are inferred back from those shapes; so are the released CLIP vision tower's. (The CLIP file's fingerprint
    also covers its unused text tower, whose exact layout diffsynth does not build: not checked.)"""
    from diffsynth.core.loader.file import hash_state_dict_keys

    from fastvmt.backbones.architecture import infer_image_encoder_config
    from fastvmt.backbones.modules import build_dit, build_image_encoder

    dit = meta_state(lambda: build_dit(RELEASED_I2V_DIT))
    assert hash_state_dict_keys(dit) in released_fingerprints("wan_video_dit")
    assert infer_dit_config({n: tuple(t.shape) for n, t in dit.items()}, {"model_type": "i2v"}) == RELEASED_I2V_DIT
    clip = meta_state(lambda: build_image_encoder(ImageEncoderConfig()).model)
    assert infer_image_encoder_config({n: tuple(t.shape) for n, t in clip.items()}) == ImageEncoderConfig()


def test_pipeline_image_changes_the_output_and_the_reference_frame_is_the_default(backbone, clip_path):
    from fastvmt.io import read_video

    reference = read_video(clip_path).frames
    pipe = MotionTransferPipeline(backbone, resolve_strategy("fastvmt", {"inner_iterations": 2}))
    options = {"num_inference_steps": 2, "seed": 3, "progress": False, "cfg_scale": 1.0}
    first = pipe(reference, "a ball", image=picture(10, 60, 100), **options)
    second = pipe(reference, "a ball", image=Image.fromarray(picture(11, 60, 100)), **options)
    assert first.report.counts.guided_steps > 0 and not first.report.notes
    assert np.abs(first.frames.astype(int) - second.frames.astype(int)).mean() > 1
    default = pipe(reference, "a ball", **options)
    assert default.report.notes and "reference's first frame" in default.report.notes[0]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


COMMON = ["--frames", FRAMES, "--height", HEIGHT, "--width", WIDTH, "--steps", 2, "--dtype", "float32",
          "--no-progress", "--cfg", 1, "--set", "inner_iterations=2"]


@pytest.mark.parametrize("strategy", ["fastvmt", "ditflow"])
def test_transfer_onto_an_image_from_the_command_line(tmp_path, clip_path, tiny_i2v_dir, strategy):
    subject = tmp_path / "subject.png"
    Image.fromarray(picture(5, 90, 70)).save(subject)
    result = invoke("transfer", clip_path, "--image", subject, "--prompt", "a ball", "--model-dir", tiny_i2v_dir,
                    "--strategy", strategy, "--out", tmp_path / "out.mp4", *COMMON)
    assert result.exit_code == 0, result.output
    sidecar = json.loads((tmp_path / "out.json").read_text())
    assert sidecar["config"]["image"] == str(subject.resolve()) and sidecar["counts"]["guided_steps"] > 0
    assert sidecar["notes"] == []


def assert_user_error(result, message):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], result.output


def test_bad_images_are_one_line_errors(tmp_path, clip_path, tiny_i2v_dir, tiny_wan_dir):
    garbage, small, huge, good = (tmp_path / name for name in ("garbage.png", "small.png", "huge.png", "good.png"))
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    Image.fromarray(picture(0, 8, 40)).save(small)
    Image.new("1", (4000, 3000)).save(huge)  # 12 megapixels: refused from its header, before decoding
    Image.fromarray(picture(0)).save(good)

    def run(image, model_dir=tiny_i2v_dir):
        return invoke("transfer", clip_path, "--image", image, "--prompt", "x", "--model-dir", model_dir,
                      "--out", tmp_path / "o.mp4", *COMMON)

    assert_user_error(run(garbage), "garbage.png")
    assert_user_error(run(small), "at least 16")
    assert_user_error(run(huge), "at most")
    assert_user_error(run(tmp_path / "none.png"), "does not exist")
    assert_user_error(run(good, tiny_wan_dir), "image-to-video checkpoint")
    assert not (tmp_path / "o.mp4").exists()


def test_the_step_cache_asks_which_i2v_coefficients(backbone):
    with pytest.raises(ValueError, match="image-to-video DiT's are diffsynth's 'Wan2.1-I2V-14B-480P'"):
        MotionTransferPipeline(backbone, resolve_strategy("fastvmt", {"step_cache": 0.1}))


def test_a_batch_moves_each_lines_image_and_checks_images_before_any_model_loads(tmp_path, clip_path, tiny_i2v_dir,
                                                                                tiny_wan_dir):
    folder = tmp_path / "jobs"
    folder.mkdir()
    Image.fromarray(picture(5)).save(folder / "subject.png")
    manifest = folder / "jobs.jsonl"
    manifest.write_text(json.dumps({"reference": str(clip_path), "prompt": "a ball", "image": "subject.png",
                                    "id": "ball"}) + "\n")
    common = [arg for arg in COMMON if arg != "--no-progress"]
    result = invoke("batch", manifest, "--out", tmp_path / "out", "--model-dir", tiny_i2v_dir, *common)
    assert result.exit_code == 0, result.output
    sidecar = json.loads((tmp_path / "out" / "ball" / "output.json").read_text())
    assert sidecar["config"]["image"] == str((folder / "subject.png").resolve()) and sidecar["notes"] == []

    manifest.write_text(json.dumps({"reference": str(clip_path), "prompt": "a ball", "image": "subject.png"}) + "\n"
                        + json.dumps({"reference": str(clip_path), "prompt": "a cat", "image": "gone.png"}) + "\n")
    result = invoke("batch", manifest, "--out", tmp_path / "t2v", "--model-dir", tiny_wan_dir, *common)
    assert result.exit_code == 2 and not (tmp_path / "t2v").exists(), result.output
    assert "line 1: 'image' needs an image-to-video checkpoint" in result.output
    assert "line 2: image 'gone.png' not found" in result.output
