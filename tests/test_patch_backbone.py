"""The weight-free patch backbone: Wan's geometry, features on the token grid, a pooling "VAE", zero velocity."""

import numpy as np
import pytest
import torch

from fastvmt import plugins
from fastvmt.backbones.patch import LATENT_CHANNELS, PatchBackbone
from fastvmt.generation.pipeline import MotionTransferPipeline
from fastvmt.io.frames import frames_to_tensor, tensor_to_frames
from fastvmt.patch_features import patch_features
from fastvmt.synthetic import moving_scene


@pytest.fixture(scope="module")
def clip():
    frames, _ = moving_scene(17, 96, 128, seed=3, feature_size=32)
    return frames


def test_geometry_is_wans_with_twelve_latent_channels():
    geometry = PatchBackbone().geometry(17, 96, 128)
    assert LATENT_CHANNELS == 12
    assert geometry.latent_shape == (1, 12, 5, 12, 16)
    assert (geometry.grid.frames, geometry.grid.height, geometry.grid.width) == (5, 6, 8)
    with pytest.raises(ValueError, match="4k\\+1"):
        PatchBackbone().geometry(16, 96, 128)
    with pytest.raises(ValueError, match="multiple of 16"):
        PatchBackbone().geometry(17, 100, 128)


def test_features_are_the_flow_commands_patch_features_on_the_token_grid(clip):
    backbone = PatchBackbone()
    latents = backbone.encode_video(frames_to_tensor(clip))
    assert tuple(latents.shape) == backbone.geometry(*clip.shape[:3]).latent_shape
    features = backbone.features(latents, 0.0, backbone.encode_prompt(""), block=14)
    assert tuple(features.q.shape) == (5, 6, 8, backbone.heads, backbone.head_dim) == (5, 6, 8, 1, 48)
    assert torch.equal(features.q, features.k)
    torch.testing.assert_close(features.q.norm(dim=-1), torch.ones(5, 6, 8, 1), atol=1e-5, rtol=0)
    torch.testing.assert_close(features.q, patch_features(clip).q, atol=1e-6, rtol=0)


def test_features_are_differentiable_and_the_same_at_every_block(clip):
    backbone = PatchBackbone()
    latents = backbone.encode_video(frames_to_tensor(clip)).requires_grad_(True)
    first = backbone.features(latents, 500.0, backbone.encode_prompt("a"), block=0).q
    (grad,) = torch.autograd.grad((first[2, 3, 4] * torch.arange(48.0)).sum(), latents)
    assert grad.abs().sum() > 0 and torch.isfinite(grad).all()
    assert grad[:, :, [0, 1, 3, 4]].abs().sum() == 0  # a token of latent frame 2 depends on frame 2 only
    torch.testing.assert_close(backbone.features(latents, 0.0, torch.empty(0), block=29).q, first)
    with pytest.raises(ValueError, match="block must be in 0..29"):
        backbone.features(latents, 0.0, torch.empty(0), block=30)


def test_decode_holds_latent_frames_at_every_fourth_frame_and_interpolates_between(clip):
    backbone = PatchBackbone()
    latents = backbone.encode_video(frames_to_tensor(clip))
    video = backbone.decode(latents)
    assert tuple(video.shape) == (17, 3, 96, 128)
    torch.testing.assert_close(video[2], (video[0] + video[4]) / 2, atol=1e-5, rtol=0)
    torch.testing.assert_close(backbone.encode_video(video), latents, atol=1e-5, rtol=0)  # 4x4 pooling inverts
    # Decoding enlarges 4x4-pooled colours: frames 0, 4, ... come back close to the clip (smooth texture).
    error = np.abs(tensor_to_frames(video)[::4].astype(int) - clip[::4]).mean()
    assert error < 6, f"mean error {error:.1f} levels of 255"


def test_velocity_is_zero_and_prompts_are_ignored(clip):
    backbone = PatchBackbone()
    latents = backbone.encode_video(frames_to_tensor(clip))
    assert backbone.encode_prompt("a red ball").numel() == 0
    velocity = backbone.velocity(latents, 900.0, backbone.encode_prompt("x"), None, 5.0)
    assert torch.equal(velocity, torch.zeros_like(latents))


def test_sampling_without_guidance_returns_the_start_latents(clip):
    backbone = PatchBackbone()
    start = backbone.encode_video(frames_to_tensor(clip[::-1].copy()))
    result = MotionTransferPipeline(backbone, "no_transfer")(clip, "p", latents=start, num_inference_steps=4,
                                                             progress=False)
    assert torch.equal(result.latents, start)
    assert backbone.velocity_calls == 4 and backbone.feature_calls == 2  # the motion check's two


def test_registered_as_patch_and_not_loadable_from_a_checkpoint(tmp_path, fresh_plugins):
    assert plugins.get("backbone", "patch") is PatchBackbone
    with pytest.raises(TypeError, match="loads no checkpoint.*MotionTransferPipeline\\(PatchBackbone\\(\\)"):
        MotionTransferPipeline.from_pretrained(str(tmp_path), backbone="patch")
