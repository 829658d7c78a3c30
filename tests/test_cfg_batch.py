"""``WanBackbone(cfg_batch=True)``: both classifier-free guidance branches in one batched DiT forward give the
velocities, and whole runs, of the two sequential forwards (tiny Wan, float32)."""

import numpy as np
import pytest
import torch

from fastvmt.backbones.tiny import tiny_backbone
from fastvmt.generation.pipeline import MotionTransferPipeline

#: Batching changes only the order of float32 reductions inside the DiT's matmuls: a few float32 ulps.
TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


@pytest.fixture(scope="module")
def backbones():
    return tiny_backbone(seed=0), tiny_backbone(seed=0, cfg_batch=True)


def test_batched_cfg_velocity_equals_the_two_forwards(backbones, monkeypatch):
    from fastvmt.backbones import forward

    sequential, batched = backbones
    context, negative = sequential.encode_prompt("a red car"), sequential.encode_prompt("blurry")
    latents = torch.randn(sequential.geometry(9, 48, 64).latent_shape, generator=torch.Generator().manual_seed(0))
    batch_sizes = []
    dit_forward = forward.dit_forward

    def counted(dit, x, t, context, **options):
        batch_sizes.append(len(context))
        return dit_forward(dit, x, t, context, **options)

    monkeypatch.setattr(forward, "dit_forward", counted)
    for timestep in (950.0, 300.0):
        batch_sizes.clear()
        expected = sequential.velocity(latents, timestep, context, negative, cfg_scale=5.8)
        actual = batched.velocity(latents, timestep, context, negative, cfg_scale=5.8)
        assert batch_sizes == [1, 1, 2]  # two sequential forwards, then one of both prompts
        assert not torch.equal(expected, sequential.velocity(latents, timestep, context))  # CFG changes it
        torch.testing.assert_close(actual, expected, **TOLERANCE)


@pytest.mark.parametrize("strategy", ["fastvmt", "flowmotion"])
def test_batched_cfg_runs_match_sequential_runs(backbones, strategy):
    reference = np.random.default_rng(0).integers(0, 256, size=(9, 48, 64, 3), dtype=np.uint8)
    sequential, batched = (
        MotionTransferPipeline(backbone, strategy)(reference, "a tiny test", num_inference_steps=5, progress=False)
        for backbone in backbones
    )
    assert sequential.report.counts == batched.report.counts
    torch.testing.assert_close(batched.latents, sequential.latents, **TOLERANCE)
