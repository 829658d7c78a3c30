"""``guidance_checkpointing`` (docs/algorithm.md#memory): the guidance forward's blocks recomputed in the backward
give the gradients and runs of the plain forward (tiny Wan, float32) while autograd keeps fewer bytes; the option
is validated, off in the presets and reaches the run from the command line."""

import dataclasses

import numpy as np
import pytest
import torch

from fastvmt.backbones.tiny import tiny_backbone
from fastvmt.costmodel.saved import saved_activation_bytes
from fastvmt.generation.pipeline import MotionTransferPipeline
from fastvmt.strategies.components import resolve_strategy
from fastvmt.strategies.presets import CAPTURED_BLOCK, PRESETS
from fastvmt.strategies.spec import Strategy
from fastvmt.transfer_run import TransferJob, TransferSettings
from tests.support.tiny_wan import tiny_wan_dir  # noqa: F401  (fixture)

#: Recomputation runs the same float32 ops on the same inputs; a few ulps allowed, should kernels differ.
TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}
SMALL_FASTVMT = {"extractor.tile": (1, 2), "extractor.window": 3, "inner_iterations": 2}


@pytest.fixture(scope="module")
def backbone():
    return tiny_backbone(seed=0)


def latents_and_context(backbone, requires_grad=True):
    latents = torch.randn(backbone.geometry(9, 96, 128).latent_shape, generator=torch.Generator().manual_seed(0))
    return latents.requires_grad_(requires_grad), backbone.encode_prompt("a dog runs on the beach")


@pytest.fixture(scope="module")
def offloaded():
    """diffsynth's VRAM management wraps the layers: checkpointing must recompute through the wrappers."""
    return tiny_backbone(seed=0, offload="cpu")


@pytest.mark.parametrize("which", ["resident", "offloaded"])
def test_checkpointed_features_have_the_plain_features_and_gradients(backbone, offloaded, which):
    backbone = backbone if which == "resident" else offloaded
    latents, context = latents_and_context(backbone)
    weights = torch.randn(2, 3 * 6 * 8, backbone.heads, backbone.head_dim, generator=torch.Generator().manual_seed(1))
    results = []
    for checkpointing in (False, True):
        features = backbone.features(latents, 800.0, context, block=CAPTURED_BLOCK, checkpointing=checkpointing)
        loss = (features.q.reshape(weights[0].shape) * weights[0]).sum() * (features.k.reshape(weights[1].shape)
                                                                             * weights[1]).sum()
        (gradient,) = torch.autograd.grad(loss, latents)
        results.append((features.q.detach(), features.k.detach(), gradient))
    for plain, checkpointed in zip(*results):
        torch.testing.assert_close(checkpointed, plain, **TOLERANCE)
    assert results[0][2].abs().max() > 0


def test_checkpointing_keeps_fewer_bytes_for_the_backward(backbone):
    latents, context = latents_and_context(backbone)
    timestep = torch.tensor([800.0])
    plain, checkpointed = (
        saved_activation_bytes(backbone.dit, latents, timestep, context, CAPTURED_BLOCK, checkpointing=checkpointing)
        for checkpointing in (False, True)
    )
    # 14 blocks' activations (tens of tensors each) against their 14 inputs: far fewer bytes
    assert 0 < checkpointed < plain / 4


def run(backbone, checkpointing, monkeypatch, preset="fastvmt", overrides=SMALL_FASTVMT):
    """A guided fastvmt run with checkpointing on or off; the checkpointing asked of every features call with
    gradients on (the reference motion and the motion check read without)."""
    asked = []
    features = backbone.features

    def spy(*args, **kwargs):
        if torch.is_grad_enabled():
            asked.append(kwargs.get("checkpointing", False))
        return features(*args, **kwargs)

    monkeypatch.setattr(backbone, "features", spy)
    strategy = resolve_strategy(preset, {**overrides, "guidance_checkpointing": checkpointing})
    reference = np.random.default_rng(0).integers(0, 256, size=(9, 48, 64, 3), dtype=np.uint8)
    result = MotionTransferPipeline(backbone, strategy)(reference, "a tiny test", num_inference_steps=5,
                                                        progress=False)
    monkeypatch.undo()
    return result, asked


@pytest.mark.parametrize("preset, overrides", [
    ("fastvmt", SMALL_FASTVMT),
    ("ditflow_full", {"inner_iterations": 2}),  # keys and values injected into block 0, which is recomputed
])
def test_a_checkpointed_guided_run_equals_the_plain_run(backbone, monkeypatch, preset, overrides):
    plain, plain_asked = run(backbone, False, monkeypatch, preset, overrides)
    checkpointed, asked = run(backbone, True, monkeypatch, preset, overrides)
    assert asked and all(asked) and not any(plain_asked)  # every guidance forward with a graph, checkpointed
    counts = plain.report.counts
    assert counts.gradients_computed > 0
    # the backward recomputes block 0's attention once a gradient, with the keys and values injected again
    recomputed = counts.gradients_computed if checkpointed.report.config["strategy"]["kv_injection"] else 0
    assert checkpointed.report.counts == dataclasses.replace(
        counts, kv_injected_calls=counts.kv_injected_calls + recomputed)
    assert checkpointed.report.config["strategy"]["guidance_checkpointing"] is True
    torch.testing.assert_close(checkpointed.latents, plain.latents, **TOLERANCE)


@pytest.mark.parametrize("value", [1, "yes", None])
def test_guidance_checkpointing_must_be_a_bool(value):
    with pytest.raises(ValueError, match="guidance_checkpointing must be true or false"):
        resolve_strategy("fastvmt", {"guidance_checkpointing": value})


def test_presets_do_not_checkpoint_and_old_sidecars_read_as_off():
    assert not any(preset.guidance_checkpointing for preset in PRESETS)
    recorded = PRESETS[0].to_dict()
    del recorded["guidance_checkpointing"]  # a sidecar written before the field existed
    assert Strategy.from_dict(recorded).guidance_checkpointing is False


@pytest.mark.parametrize("given", [True, False])
def test_the_run_setting_replaces_the_strategys_after_the_overrides(tiny_wan_dir, given):
    settings = TransferSettings(model_dir=tiny_wan_dir, guidance_checkpointing=given,
                                overrides={"guidance_checkpointing": not given})
    assert settings.job_strategy(TransferJob("clip.mp4", "a prompt")).guidance_checkpointing is given
    unset = TransferSettings(model_dir=tiny_wan_dir, overrides={"guidance_checkpointing": True})
    assert unset.job_strategy(TransferJob("clip.mp4", "a prompt")).guidance_checkpointing is True
