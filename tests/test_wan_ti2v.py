"""Wan2.2 TI2V-5B: the released layout with Wan2.2's 16x VAE, its 32-pixel size rule, the fused first frame as
diffsynth runs it, the released files' fingerprints, and motion transfer onto an image from the command line."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from fastvmt.backbones import checkpoint
from fastvmt.backbones.architecture import (
    RELEASED_TI2V_DIT,
    WAN22_VAE,
    infer_dit_config,
    infer_vae_config,
)
from fastvmt.backbones.families import WAN22_TI2V, detect_family
from fastvmt.backbones.wan import WanBackbone
from fastvmt.backbones.wan_ti2v import WanTI2VBackbone
from fastvmt.cli import app
from fastvmt.io import read_video, write_video
from fastvmt.io.frames import frames_to_tensor
from fastvmt.synthetic import moving_scene
from tests.support.tiny_wan import tiny_wan_dir  # noqa: F401  (fixture)
from tests.support.tiny_wan_ti2v import tiny_ti2v_dir  # noqa: F401  (fixture)

FRAMES, HEIGHT, WIDTH = 9, 96, 128  # a 3 x 3 x 4 token grid through the 16x VAE


@pytest.fixture(scope="module")
def backbone(tiny_ti2v_dir):
    return WanBackbone.from_pretrained(tiny_ti2v_dir, dtype=torch.float32, device="cpu")


def picture(seed, height=HEIGHT, width=WIDTH):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_released_layout_loads_with_the_16x_vae_and_its_size_rule(tiny_ti2v_dir, backbone, tmp_path):
    assert isinstance(backbone, WanTI2VBackbone) and backbone.spatial_factor == 16
    geometry = backbone.geometry(FRAMES, HEIGHT, WIDTH)
    assert geometry.latent_shape == (1, 48, 3, 6, 8) and (geometry.grid.height, geometry.grid.width) == (3, 4)
    with pytest.raises(ValueError, match="height must be a multiple of 32 pixels, got 48; use 32 or 64"):
        backbone.geometry(FRAMES, 48, WIDTH)
    bare = shutil.copytree(tiny_ti2v_dir, tmp_path / "bare")
    (bare / checkpoint.CONFIG_FILE).unlink()
    assert detect_family(bare) is WAN22_TI2V  # from Wan2.2's VAE file
    (bare / checkpoint.WAN22_VAE_FILE).unlink()
    with pytest.raises(checkpoint.MissingCheckpointFilesError, match=r"(?s)Wan2\.2_VAE\.pth.*Wan2\.2 TI2V-5B"):
        WanTI2VBackbone.from_pretrained(bare, dtype=torch.float32, device="cpu")


def test_fused_first_frame_is_what_diffsynth_runs(backbone):
    """The first frame's latent replaces the first latent frame, seen at timestep 0: diffsynth's model_fn_wan_video
    with fuse_vae_embedding_in_latents on a DiT with seperated_timestep (the released TI2V-5B's flags)."""
    from diffsynth.pipelines.wan_video import model_fn_wan_video

    conditioning = backbone.encode_image(frames_to_tensor(picture(1)[None])[0], FRAMES)
    latents = torch.randn(1, 48, 3, 6, 8, generator=torch.Generator().manual_seed(0))
    context = backbone.encode_prompt("a cat")
    text_only = backbone.velocity(latents, 700.0, context)
    backbone.dit.seperated_timestep = True
    try:
        expected = model_fn_wan_video(backbone.dit, latents=conditioning.fuse(latents), timestep=torch.tensor([700.0]),
                                      context=context, fuse_vae_embedding_in_latents=True)
    finally:
        backbone.dit.seperated_timestep = False
    with backbone.conditioned_on(conditioning):
        torch.testing.assert_close(backbone.velocity(latents, 700.0, context), expected)
        decoded = backbone.decode(latents)
    assert not torch.allclose(expected, text_only)
    torch.testing.assert_close(decoded[0], backbone.decode(conditioning.fuse(latents))[0])


def meta_state(factory):
    with torch.device("meta"):
        return factory().state_dict()


def test_released_files_match_diffsynths_fingerprints_and_sizes_are_inferred():
    from diffsynth.configs import MODEL_CONFIGS
    from diffsynth.core.loader.file import hash_state_dict_keys

    from fastvmt.backbones.modules import build_dit, build_vae

    def fingerprints(name):
        return {config["model_hash"] for config in MODEL_CONFIGS if config["model_name"] == name}

    dit = meta_state(lambda: build_dit(RELEASED_TI2V_DIT))
    vae = meta_state(lambda: build_vae(WAN22_VAE).model)
    assert hash_state_dict_keys(dit) in fingerprints("wan_video_dit")
    assert hash_state_dict_keys(vae) in fingerprints("wan_video_vae")
    shapes = {n: tuple(t.shape) for n, t in dit.items()}
    assert infer_dit_config(shapes, {"model_type": "ti2v"}) == RELEASED_TI2V_DIT
    assert infer_vae_config({n: tuple(t.shape) for n, t in vae.items()}) == WAN22_VAE


@pytest.mark.parametrize("strategy", ["fastvmt", "ditflow"])
def test_transfer_onto_an_image_from_the_command_line(tmp_path, tiny_ti2v_dir, strategy):
    frames, _ = moving_scene(FRAMES, HEIGHT, WIDTH, seed=3, pan=(0.0, 2.0), object_velocity=(0.5, 1.0))
    reference = write_video(tmp_path / "scene.mp4", frames, fps=16)
    outputs = []
    for seed in (5, 6) if strategy == "fastvmt" else (5,):
        subject = tmp_path / f"subject{seed}.png"
        Image.fromarray(picture(seed, 70, 90)).save(subject)
        result = CliRunner().invoke(app, [str(a) for a in (
            "transfer", reference, "--image", subject, "--prompt", "a ball", "--model-dir", tiny_ti2v_dir,
            "--strategy", strategy, "--out", tmp_path / f"out{seed}.mp4", "--frames", FRAMES, "--height", HEIGHT,
            "--width", WIDTH, "--steps", 2, "--dtype", "float32", "--no-progress", "--cfg", 1,
            "--set", "inner_iterations=2")])
        assert result.exit_code == 0, result.output
        sidecar = json.loads((tmp_path / f"out{seed}.json").read_text())
        assert sidecar["counts"]["guided_steps"] > 0 and sidecar["notes"] == []
        outputs.append(read_video(tmp_path / f"out{seed}.mp4").frames.astype(int))
    if len(outputs) == 2:
        assert np.abs(outputs[0] - outputs[1]).mean() > 1  # the conditioning image changes the output


def test_backbones_lists_every_family_with_its_files():
    from fastvmt.backbones.families import FAMILIES

    listing = CliRunner().invoke(app, ["backbones"]).output
    for family in FAMILIES.values():
        line = next(line for line in listing.splitlines() if line.startswith(family.name + " "))
        assert all(name in line for name in (*family.releases, family.vae_file, *dict(family.extra_files)))
    assert checkpoint.WAN22_VAE_FILE not in next(line for line in listing.splitlines() if line.startswith("wan2.1-t2v"))


def test_the_default_tile_on_the_released_ti2v_size_names_tiles_that_fit():
    from fastvmt.geometry import video_geometry
    from fastvmt.strategies.extractors import WindowedAMFExtractor

    grid = video_geometry(81, 704, 1280, latent_channels=48, spatial_factor=16).grid  # Wan's size: 22 x 40 tokens
    with pytest.raises(ValueError, match=r"heights that fit: 1, 2, 11, 22;.*nearest tile is 2x4 .*tile=\[2,4\]"):
        WindowedAMFExtractor().check(grid)
    WindowedAMFExtractor(tile=(2, 4)).check(grid)
