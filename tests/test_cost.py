"""The FLOP cost model against torch's FlopCounterMode, diffsynth's scheduler, the spec's counts and the presets."""

import dataclasses

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from fastvmt import plugins
from fastvmt.backbones.architecture import RELEASED_DITS, DiTConfig
from fastvmt.costmodel import (
    RECIPES,
    Depth,
    GuidanceRecipe,
    Sampling,
    amf_flops,
    backward_flops,
    forward_flops,
    run_cost,
)
from fastvmt.generation.sampling import steps_run
from fastvmt.geometry import token_grid
from fastvmt.interfaces import ATTENTION, MotionExtractor, TokenGrid
from fastvmt.ops import frame_pairs
from fastvmt.strategies.extractors import DenseAMFExtractor, WindowedAMFExtractor
from fastvmt.strategies.presets import CAPTURED_BLOCK, FASTVMT, NO_TRANSFER
from fastvmt.strategies.schedulers import guided_step_count

aten = torch.ops.aten
# CPU SDPA runs a kernel FlopCounterMode has no formula for; count it with torch's own SDPA formulas.
CPU_SDPA = {
    aten._scaled_dot_product_flash_attention_for_cpu: lambda q, k, v, *a, out_shape=None, **kw: sdpa_flop_count(
        q, k, v
    ),
    aten._scaled_dot_product_flash_attention_for_cpu_backward: (
        lambda g, q, k, v, *a, out_shape=None, **kw: sdpa_backward_flop_count(g, q, k, v)
    ),
}

TINY = DiTConfig(dim=96, ffn_dim=160, num_heads=4, num_layers=5, text_dim=32, text_len=7, freq_dim=16)


class _Stop(Exception):
    pass


@pytest.fixture(scope="module")
def tiny_wan():
    from diffsynth.models.wan_video_dit import WanModel

    torch.manual_seed(0)
    model = WanModel(**TINY.model_kwargs())
    return model.eval().requires_grad_(False)


def _run(model, latents, hook_block=None, stop_after_block=None):
    """model_fn_wan_video on ``latents``; captures block ``hook_block``'s q/k and stops there or later."""
    from diffsynth.pipelines.wan_video import model_fn_wan_video

    captured, handles = {}, []
    if hook_block is not None:

        def capture(module, args):
            captured["q"], captured["k"] = args[0], args[1]
            if stop_after_block is None:
                raise _Stop

        handles.append(model.blocks[hook_block].self_attn.attn.register_forward_pre_hook(capture))
    if stop_after_block is not None:

        def stop(module, args, output):
            raise _Stop

        handles.append(model.blocks[stop_after_block - 1].register_forward_hook(stop))
    context = torch.randn(1, TINY.text_len, TINY.text_dim)
    try:
        out = model_fn_wan_video(dit=model, latents=latents, timestep=torch.tensor([500.0]), context=context)
    except _Stop:
        out = None
    finally:
        for handle in handles:
            handle.remove()
    return out, captured


def _counted(fn):
    with FlopCounterMode(display=False, custom_mapping=CPU_SDPA) as counter:
        fn()
    return counter.get_total_flops()


@pytest.mark.parametrize("frames,height,width", [(3, 8, 12)])
def test_dit_forward_and_backward_match_flop_counter(tiny_wan, frames, height, width):
    grid = TokenGrid(frames, height // 2, width // 2)
    latents = torch.randn(1, 16, frames, height, width)

    measured = _counted(lambda: _run(tiny_wan, latents))
    assert forward_flops(TINY, grid, Depth.full(TINY)) == pytest.approx(measured, rel=0.05)

    latents.requires_grad_(True)
    state = {}
    measured = _counted(lambda: state.update(_run(tiny_wan, latents, hook_block=2)[1]))
    assert forward_flops(TINY, grid, Depth.until_qk(2)) == pytest.approx(measured, rel=0.05)
    measured = _counted(lambda: (state["q"] * state["k"]).sum().backward())
    assert backward_flops(TINY, grid, Depth.until_qk(2)) == pytest.approx(measured, rel=0.05)
    assert latents.grad is not None and latents.grad.abs().sum() > 0

    # The release's guidance forward: 4 full blocks run although the features come from block 2.
    measured = _counted(lambda: _run(tiny_wan, latents.detach(), hook_block=2, stop_after_block=4))
    assert forward_flops(TINY, grid, Depth.through_blocks(4)) == pytest.approx(measured, rel=0.05)


def test_dense_amf_matches_flop_counter_on_reference_backend():
    from fastvmt.backends.reference import ReferenceBackend

    f, h, w, d = 3, 4, 6, 24
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(f, h, w, d, generator=gen, requires_grad=True)
    k = torch.randn(f, h, w, d, generator=gen, requires_grad=True)
    pairs = torch.tensor([(i, j) for i in range(f) for j in range(f)])
    config = DiTConfig(dim=d, ffn_dim=1, num_heads=1, num_layers=1)
    expected = amf_flops(DenseAMFExtractor(pairs="all"), config, TokenGrid(f, h, w))

    out = {}
    measured_forward = _counted(lambda: out.update(pos=ReferenceBackend().dense_positions(q, k, pairs, 0.2)))
    measured_backward = _counted(lambda: out["pos"].square().sum().backward())
    assert expected.forward == pytest.approx(measured_forward, rel=0.05)
    assert expected.backward == pytest.approx(measured_backward, rel=0.05)


def test_strength_semantics_follow_diffsynth_scheduler():
    from diffsynth.diffusion.flow_match import FlowMatchScheduler

    for strength in (1.0, 0.75, 0.3):
        sigmas, _ = FlowMatchScheduler.set_timesteps_wan(num_inference_steps=50, denoising_strength=strength, shift=7.0)
        assert steps_run(50, strength, "diffsynth") == len(sigmas)
    assert steps_run(50, 0.75, "truncate") == 37


def test_run_counts_follow_the_spec():
    grid = token_grid(81, 480, 832)
    assert (grid.frames, grid.height, grid.width) == (21, 30, 52)
    assert len(frame_pairs(21, 4, "forward")) == 78
    assert len(frame_pairs(21, 4, "all")) == 441

    fastvmt = run_cost(RECIPES["fastvmt"], RELEASED_DITS["14B"], grid)
    release = run_cost(RECIPES["fastvmt-release"], RELEASED_DITS["14B"], grid)
    ditflow = run_cost(RECIPES["ditflow"], RELEASED_DITS["14B"], grid)
    assert (fastvmt.steps, fastvmt.guided, fastvmt.gradients, fastvmt.reference_passes) == (50, 10, 40, 10)
    assert (ditflow.guided, ditflow.gradients, ditflow.reference_passes) == (10, 50, 1)
    # Early exit changes the forwards only; the backward starts from block 14's q/k in both.
    assert release.phases["guidance backward"] == fastvmt.phases["guidance backward"]
    assert release.phases["guidance forward"] > fastvmt.phases["guidance forward"]
    assert release.phases["denoising (CFG)"] == fastvmt.phases["denoising (CFG)"] == ditflow.phases["denoising (CFG)"]
    # Dense all-pairs AMF over concatenated heads costs far more than windowed forward pairs.
    assert ditflow.phases["AMF ops"] > 100 * fastvmt.phases["AMF ops"]


def test_windowed_amf_is_cheaper_than_dense_and_equal_when_window_covers_frame():
    config = RELEASED_DITS["1.3B"]
    grid = token_grid(81, 480, 832)
    dense = amf_flops(DenseAMFExtractor(), config, grid)
    windowed = amf_flops(WindowedAMFExtractor(), config, grid)
    assert windowed.forward < dense.forward / 2
    small = TokenGrid(5, 6, 8)
    covering = amf_flops(WindowedAMFExtractor(tile=(1, 1), window=9), config, small)
    assert covering.backward > amf_flops(DenseAMFExtractor(), config, small).backward  # plus key means


class _PluginExtractor(MotionExtractor):
    """An extractor the cost model has no formula for."""

    def extract(self, features, state=None, *, reference=False):
        raise AssertionError("the cost model only reads an extractor's settings")


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: token_grid(32, 480, 832), "4k\\+1.*use 29 or 33 frames"),
        (lambda: token_grid(33, 480, 830), "width must be a multiple of 16 pixels, got 830; use 816 or 832"),
        (lambda: forward_flops(TINY, TokenGrid(1, 2, 2), Depth.until_qk(5)), "runs past"),
        (lambda: amf_flops(WindowedAMFExtractor(tile=(4, 4)), TINY, TokenGrid(3, 30, 52)), "does not divide"),
        (lambda: amf_flops(_PluginExtractor(), TINY, TokenGrid(3, 30, 52)), "dense and windowed AMF extractors"),
        (lambda: GuidanceRecipe("early", FASTVMT, guidance_forward="blocks:3"), "blocks:N"),
        (lambda: GuidanceRecipe("plain", NO_TRANSFER), "not guided"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_formula_matches_the_project_backbone_forward():
    """The same check on fastvmt's own DiT driver (velocity and early-exit features of the tiny Wan)."""
    from fastvmt.backbones.forward import capture_qk, dit_forward
    from fastvmt.backbones.modules import build_dit
    from fastvmt.backbones.tiny import TINY_DIT

    torch.manual_seed(0)
    dit = build_dit(TINY_DIT, initialize=True).eval().requires_grad_(False)
    config = dataclasses.replace(TINY_DIT, text_len=24)
    grid = TokenGrid(3, 6, 8)
    latents = torch.randn(1, 16, 3, 12, 16)
    context, timestep = torch.randn(1, 24, TINY_DIT.text_dim), torch.tensor([700.0])

    measured = _counted(lambda: dit_forward(dit, latents, timestep, context))
    assert forward_flops(config, grid, Depth.full(config)) == pytest.approx(measured, rel=0.05)

    latents.requires_grad_(True)
    qk = {}
    block = CAPTURED_BLOCK
    measured = _counted(lambda: qk.update(zip("qk", capture_qk(dit, latents, timestep, context, block))))
    assert forward_flops(config, grid, Depth.until_qk(block)) == pytest.approx(measured, rel=0.05)
    measured = _counted(lambda: (qk["q"] * qk["k"]).sum().backward())
    assert backward_flops(config, grid, Depth.until_qk(block)) == pytest.approx(measured, rel=0.05)


@pytest.mark.parametrize("name", list(RECIPES))
def test_recipes_read_their_values_from_the_registered_presets(name):
    """Each recipe costs its preset as registered; overriding a preset value changes the counts it gives."""
    recipe = RECIPES[name]
    assert recipe.strategy == plugins.get("strategy", recipe.strategy.name)
    config, grid = RELEASED_DITS["1.3B"], token_grid(33, 480, 832)
    sampling = Sampling(num_steps=20)

    def cost(**changes):
        strategy = recipe.strategy.override(**{"strength_semantics": "truncate", **changes})
        return run_cost(dataclasses.replace(recipe, strategy=strategy), config, grid, sampling)

    base = cost()
    assert base.steps == int(20 * recipe.strategy.denoising_strength)
    assert cost(denoising_strength=0.5).steps == 10
    assert cost(strength_semantics="diffsynth").steps == 20
    fraction = cost(**{"scheduler.guided_fraction": 0.5})
    assert fraction.guided == guided_step_count(0.5, base.steps) != base.guided
    every = cost(scheduler="every", inner_iterations=7)
    assert every.gradients == every.guided * 7 != base.gradients
    once, per_step = cost(reference="once"), cost(reference="per_step")
    assert (once.reference_passes, per_step.reference_passes) == (1, base.guided)
    assert cost(cfg_scale=1.0).phases["denoising (CFG)"] * 2 == base.phases["denoising (CFG)"]
    if ATTENTION not in recipe.reads:  # latent predictions: no backward, no AMF, the block is not read
        assert base.phases["guidance backward"] == base.phases["AMF ops"] == 0
        assert cost(block=CAPTURED_BLOCK - 4).phases == base.phases
        return
    early = cost(block=CAPTURED_BLOCK - 4)
    assert early.phases["guidance backward"] == base.gradients * backward_flops(
        config, grid, Depth.until_qk(CAPTURED_BLOCK - 4)
    )
    other_pairs = "forward" if recipe.strategy.extractor.options["pairs"] == "all" else "all"
    assert cost(**{"extractor.pairs": other_pairs}).phases["AMF ops"] != base.phases["AMF ops"]


@pytest.mark.parametrize("size", list(RELEASED_DITS))
def test_flowmotion_costs_dit_forwards_only(size):
    """FlowMotion per guided step: a reference velocity (empty prompt, one pass), then a CFG velocity (two passes)
    per inner iteration; no backward, no AMF. 10 guided steps of 3 iterations on top of 50 CFG steps: 170 full DiT
    forwards (the paper counts about 180: its code runs the empty-prompt reference through CFG, two passes)."""
    config, grid = RELEASED_DITS[size], token_grid(81, 480, 832)
    full = forward_flops(config, grid, Depth.full(config))
    flowmotion = run_cost(RECIPES["flowmotion"], config, grid)
    assert (flowmotion.steps, flowmotion.guided, flowmotion.gradients, flowmotion.reference_passes) == (50, 10, 30, 10)
    assert flowmotion.phases == {"denoising (CFG)": 100 * full, "reference features": 10 * full,
                                 "guidance forward": 60 * full, "guidance backward": 0, "AMF ops": 0}
    assert flowmotion.total == 170 * full
    recipe = RECIPES["flowmotion"]

    def variant(**changes):
        return run_cost(dataclasses.replace(recipe, strategy=recipe.strategy.override(**changes)), config, grid)

    assert variant(scheduler="interval").phases["guidance forward"] == 20 * full  # one velocity a guided step
    assert variant(reference="once").phases["reference features"] == 0  # the clean latent predicts itself
    hybrid, fastvmt = run_cost(RECIPES["fastvmt_flowmotion"], config, grid), run_cost(RECIPES["fastvmt"], config, grid)
    assert hybrid.phases["guidance backward"] == fastvmt.phases["guidance backward"]
    assert hybrid.phases["AMF ops"] == fastvmt.phases["AMF ops"]
    assert hybrid.phases["guidance forward"] - fastvmt.phases["guidance forward"] == 2 * hybrid.gradients * full
    assert hybrid.phases["reference features"] - fastvmt.phases["reference features"] == 10 * full


def test_windowed_recipe_reads_the_extractor_window_and_tile():
    config, grid = RELEASED_DITS["1.3B"], token_grid(33, 480, 832)
    base = run_cost(RECIPES["fastvmt"], config, grid)
    smaller = GuidanceRecipe("small", FASTVMT.override(**{"extractor.window": 11, "extractor.tile": (5, 4)}))
    amf = amf_flops(WindowedAMFExtractor(window=11, tile=(5, 4)), config, grid)
    cost = run_cost(smaller, config, grid)
    expected = cost.reference_passes * amf.reference + cost.gradients * (amf.forward + amf.backward)
    assert cost.phases["AMF ops"] == expected
    assert cost.phases["AMF ops"] < base.phases["AMF ops"]
    assert "window=11" in smaller.summary and "window=21" in RECIPES["fastvmt"].summary


def test_turbo_preset_costs_the_truncated_steps_against_the_release_and_ditflow():
    from fastvmt.costmodel import STEP_CACHE_SKIP
    from fastvmt.strategies.presets import FASTVMT_TURBO

    # nothing else differs
    assert FASTVMT_TURBO.override(name="fastvmt", strength_semantics="diffsynth", step_cache=None) == FASTVMT
    config, grid = RELEASED_DITS["1.3B"], token_grid(81, 480, 832)
    turbo, fastvmt = run_cost(RECIPES["fastvmt_turbo"], config, grid), run_cost(RECIPES["fastvmt"], config, grid)
    assert (turbo.steps, turbo.guided, turbo.gradients) == (37, guided_step_count(0.2, 37), 7 * 4)
    last_guided = max(RECIPES["fastvmt_turbo"].guided_steps(37))
    assert turbo.cached_steps == round(STEP_CACHE_SKIP * (37 - 1 - last_guided - 2)) > 0
    assert turbo.phases["denoising (CFG)"] * 50 == fastvmt.phases["denoising (CFG)"] * (37 - turbo.cached_steps)
    uncached = run_cost(RECIPES["fastvmt_turbo"], config, grid, step_cache_skip=0.0)
    assert uncached.cached_steps == 0 and uncached.phases["denoising (CFG)"] * 50 == (
        fastvmt.phases["denoising (CFG)"] * 37)
    for other in ("fastvmt-release", "ditflow", "fastvmt"):
        assert turbo.total < run_cost(RECIPES[other], config, grid).total


def test_each_lever_alone_saves_on_the_release_and_all_together_save_the_most():
    from fastvmt.costmodel import LEVERS, lever_costs

    costs = lever_costs(RELEASED_DITS["14B"], token_grid(81, 480, 832))
    release, turbo = costs["fastvmt-release"].total, costs["fastvmt_turbo"].total
    for name in LEVERS:
        assert turbo < costs[name].total < release
    assert costs["release + step cache"].cached_steps > 0 and costs["release + truncated start"].cached_steps == 0
    assert costs["release + early exit"].phases["denoising (CFG)"] == costs["fastvmt-release"].phases["denoising (CFG)"]
    never = lever_costs(RELEASED_DITS["14B"], token_grid(81, 480, 832), step_cache_skip=0.0)
    assert never["release + step cache"].total == release  # the cache's saving is all in the assumed share
