"""The tiny Wan's DiT: captured Q/K, the early-exit forward, gradients, velocity and CFG, input checks."""

import re

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fastvmt.backbones.tiny import tiny_backbone
from fastvmt.geometry import video_geometry
from fastvmt.strategies.presets import CAPTURED_BLOCK

TIMESTEP = 800.0


@pytest.fixture(scope="module")
def backbone():
    return tiny_backbone(seed=0)


@pytest.fixture(scope="module")
def inputs(backbone):
    """Latents of a 9-frame 96x128 video (token grid 3x6x8), a prompt and a negative prompt."""
    latents = torch.randn(backbone.geometry(9, 96, 128).latent_shape, generator=torch.Generator().manual_seed(0))
    return latents, backbone.encode_prompt("a dog runs on the beach"), backbone.encode_prompt("static, blurry")


def attention_inputs(backbone, latents, context, block):
    """q and k that ``block``'s attention call receives in a full, uninterrupted forward."""
    seen = {}

    def record(module, args):
        seen["q"], seen["k"] = args[0], args[1]

    handle = backbone.dit.blocks[block].self_attn.attn.register_forward_pre_hook(record)
    try:
        backbone.velocity(latents, TIMESTEP, context)
    finally:
        handle.remove()
    return seen["q"], seen["k"]


@pytest.mark.parametrize("block", [0, CAPTURED_BLOCK, CAPTURED_BLOCK + 1])
def test_features_are_what_the_attention_receives_in_a_full_forward(backbone, inputs, block):
    latents, context, _ = inputs
    features = backbone.features(latents, TIMESTEP, context, block=block)
    assert features.q.shape == (3, 6, 8, backbone.heads, backbone.head_dim) == (3, 6, 8, 2, 32)
    assert features.grid == backbone.geometry(9, 96, 128).grid
    q, k = attention_inputs(backbone, latents, context, block)
    # the same layers on the same inputs; a tolerance all the same, as kernels may differ between the two
    # forwards (autograd or not, memory alignment). A wrong block or pre-RoPE capture differs at order 1.
    torch.testing.assert_close(features.q, q.reshape(features.q.shape), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(features.k, k.reshape(features.k.shape), rtol=1e-6, atol=1e-6)


def test_features_are_after_qk_norm_and_rope(backbone, inputs):
    from diffsynth.models.wan_video_dit import rope_apply

    latents, context, _ = inputs
    attention = backbone.dit.blocks[CAPTURED_BLOCK].self_attn
    seen = {}
    handle = attention.register_forward_pre_hook(lambda module, args: seen.update(x=args[0], freqs=args[1]))
    try:
        features = backbone.features(latents, TIMESTEP, context, block=CAPTURED_BLOCK)
    finally:
        handle.remove()
    normed_q = attention.norm_q(attention.q(seen["x"]))
    normed_k = attention.norm_k(attention.k(seen["x"]))
    rotated_q = rope_apply(normed_q, seen["freqs"], backbone.heads).reshape(features.q.shape)
    rotated_k = rope_apply(normed_k, seen["freqs"], backbone.heads).reshape(features.k.shape)
    torch.testing.assert_close(features.q, rotated_q)
    torch.testing.assert_close(features.k, rotated_k)
    # RoPE moves every token but the grid origin: the capture is not the pre-RoPE projection.
    assert not torch.allclose(features.q[1:], normed_q.reshape(features.q.shape)[1:])


@pytest.mark.parametrize("block", [0, CAPTURED_BLOCK, CAPTURED_BLOCK + 1])
def test_early_exit_runs_only_blocks_before_and_the_projections_of_block(backbone, inputs, block):
    latents, context, _ = inputs
    dit = backbone.dit
    started, finished, handles = [], [], []
    watched = {f"blocks.{i}": b for i, b in enumerate(dit.blocks)}
    target = dit.blocks[block]
    watched.update(
        head=dit.head,
        attention=target.self_attn.attn,
        out_projection=target.self_attn.o,
        cross_attention=target.cross_attn,
        ffn=target.ffn,
        q_norm=target.self_attn.norm_q,
        k_norm=target.self_attn.norm_k,
    )
    for name, module in watched.items():
        handles.append(module.register_forward_pre_hook(lambda m, a, name=name: started.append(name)))
        handles.append(module.register_forward_hook(lambda m, a, o, name=name: finished.append(name)))
    try:
        backbone.features(latents, TIMESTEP, context, block=block)
    finally:
        for handle in handles:
            handle.remove()
    before = [f"blocks.{i}" for i in range(block)]
    assert [n for n in finished if n.startswith("blocks.")] == before
    assert [n for n in started if n.startswith("blocks.")] == [*before, f"blocks.{block}"]
    assert {"q_norm", "k_norm"} <= set(finished)
    assert "attention" in started and "attention" not in finished
    assert not {"head", "out_projection", "cross_attention", "ffn"} & set(started)


def test_gradients_reach_the_latents_as_through_the_full_forward(backbone, inputs):
    latents, context, _ = inputs

    def loss(q, k):
        return (q.float().mean(dim=-2) * k.float().roll(1, dims=0).mean(dim=-2)).sum()

    early = latents.clone().requires_grad_()
    features = backbone.features(early, TIMESTEP, context, block=CAPTURED_BLOCK)
    loss(features.q, features.k).backward()
    full = latents.clone().requires_grad_()
    q, k = attention_inputs(backbone, full, context, CAPTURED_BLOCK)
    loss(q.reshape(features.q.shape), k.reshape(features.k.shape)).backward()
    assert early.grad is not None and early.grad.abs().sum() > 0
    torch.testing.assert_close(early.grad, full.grad)


def test_velocity_shape_and_classifier_free_guidance(backbone, inputs):
    latents, context, negative = inputs
    positive_v = backbone.velocity(latents, TIMESTEP, context)
    negative_v = backbone.velocity(latents, TIMESTEP, negative)
    assert positive_v.shape == latents.shape and positive_v.dtype == backbone.dtype
    assert not torch.allclose(positive_v, negative_v)
    guided = backbone.velocity(latents, TIMESTEP, context, negative, cfg_scale=5.8)
    torch.testing.assert_close(guided, negative_v + 5.8 * (positive_v - negative_v))
    backbone.cfg_batch = True
    try:
        batched = backbone.velocity(latents, TIMESTEP, context, negative, cfg_scale=5.8)
    finally:
        backbone.cfg_batch = False
    torch.testing.assert_close(batched, guided)
    assert not torch.allclose(backbone.velocity(latents, 300.0, context), positive_v)


def test_velocity_equals_diffsynth_model_fn(backbone, inputs):
    from diffsynth.pipelines.wan_video import model_fn_wan_video

    latents, context, _ = inputs
    timestep = torch.tensor([TIMESTEP])
    expected = model_fn_wan_video(backbone.dit, latents=latents, timestep=timestep, context=context)
    torch.testing.assert_close(backbone.velocity(latents, TIMESTEP, context), expected)


def test_prompt_features_are_zero_after_the_prompt(backbone):
    context = backbone.encode_prompt("a cat")
    ids, mask = backbone.tokenizer("a cat", return_mask=True, add_special_tokens=True)
    length = int(mask.sum())
    assert context.shape == (1, 512, backbone.text_dim)
    assert context[0, :length].abs().sum(dim=-1).min() > 0
    assert context[0, length:].abs().sum() == 0
    assert not torch.allclose(context, backbone.encode_prompt("a dog"))


def test_vae_round_trip_shapes_tiled_and_whole(backbone):
    video = torch.rand(9, 3, 48, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    backbone.vae_tile_size, backbone.vae_tile_stride = (4, 4), (2, 2)
    try:
        whole, tiled = backbone.encode_video(video, tiled=False), backbone.encode_video(video)
        decoded = backbone.decode(tiled)
    finally:
        backbone.vae_tile_size, backbone.vae_tile_stride = (30, 52), (15, 26)
    assert whole.shape == tiled.shape == backbone.geometry(9, 48, 64).latent_shape
    assert not torch.equal(whole, tiled)  # tiling did run
    assert decoded.shape == video.shape and decoded.abs().max() <= 1


def test_bad_inputs_are_rejected_before_the_forward(backbone, inputs):
    latents, context, _ = inputs
    with pytest.raises(ValueError, match=r"block must be an int in \[0, 15\]"):
        backbone.features(latents, TIMESTEP, context, block=16)
    with pytest.raises(ValueError, match="does not divide into DiT patches"):
        backbone.features(latents[..., :5], TIMESTEP, context, block=0)
    with pytest.raises(ValueError, match=r"timestep is sigma \* 1000"):
        backbone.velocity(latents, 1500.0, context)
    with pytest.raises(ValueError, match="needs a negative_context"):
        backbone.velocity(latents, TIMESTEP, context, cfg_scale=5.0)
    with pytest.raises(ValueError, match=r"context must be \(1, tokens, 32\)"):
        backbone.velocity(latents, TIMESTEP, context[..., :16])
    with pytest.raises(ValueError, match="use 9 or 13 frames"):
        backbone.encode_video(torch.zeros(10, 3, 64, 64))
    with pytest.raises(ValueError, match="height must be a multiple of 16 pixels, got 60; use 48 or 64"):
        backbone.encode_video(torch.zeros(9, 3, 60, 64))


def test_released_geometry():
    geometry = video_geometry(81, 480, 832, latent_channels=16)
    assert geometry.latent_shape == (1, 16, 21, 60, 104)
    assert (geometry.grid.frames, geometry.grid.height, geometry.grid.width) == (21, 30, 52)


@given(st.integers(1, 200), st.integers(1, 1200), st.integers(1, 1200))
def test_geometry_accepts_exactly_4k_plus_1_frames_and_multiples_of_16(frames, height, width):
    problems = [
        name
        for name, bad in [("num_frames", (frames - 1) % 4), ("height", height % 16), ("width", width % 16)]
        if bad
    ]
    try:
        geometry = video_geometry(frames, height, width, latent_channels=16)
    except ValueError as error:
        message = str(error)
        assert problems and message.startswith(f"{problems[0]} must")
        given_value = {"num_frames": frames, "height": height, "width": width}[problems[0]]
        step = 4 if problems[0] == "num_frames" else 16
        suggestions = [int(s) for s in re.findall(r"\d+", message.split("; use ")[1])]
        assert suggestions
        for value in suggestions:  # valid neighbours of the given value
            assert abs(value - given_value) < step
            assert ((value - 1) % 4 == 0) if problems[0] == "num_frames" else (value % 16 == 0)
        return
    assert not problems
    assert geometry.latent_shape == (1, 16, (frames - 1) // 4 + 1, height // 8, width // 8)
    assert geometry.grid.tokens_per_frame * 256 == height * width
