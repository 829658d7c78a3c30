"""FlowMotion as a strategy: guidance on latent predictions, without a backward pass through the DiT.

The maths (velocity regularisation, frame differences) against their definitions; the extension point (extractors
declare what they read, the pipeline reads exactly that); on the tiny Wan: no graph through the DiT, the loss
falls, the counts follow the schedule; on the weight-free patch backbone (zero velocity, so the predicted latent
is the latent itself): a translation is transferred.
"""

import dataclasses

import numpy as np
import pytest
import torch

from fastvmt import ops
from fastvmt.backbones.patch import PatchBackbone
from fastvmt.generation.pipeline import MotionTransferPipeline
from fastvmt.interfaces import ATTENTION, PREDICTION, AttentionFeatures, LatentMotion, LatentPrediction, Readings
from fastvmt.io.frames import frames_to_tensor
from fastvmt.patch_features import PATCH_TAU
from fastvmt.strategies.components import build_components, resolve_strategy
from fastvmt.strategies.extractors import LatentPredictionExtractor
from fastvmt.strategies.flowmotion import frame_difference_mse, predicted_clean, regularise_velocity
from fastvmt.strategies.heads import reduce_heads
from fastvmt.strategies.losses import LatentAlignmentLoss
from fastvmt.strategies.presets import FASTVMT_FLOWMOTION, FLOWMOTION, PRESETS
from fastvmt.synthetic import moving_scene

TINY_STEPS = 5  # 1 guided step at the presets' 20 %
PATCH_STEPS = 10  # 2 guided steps


def latents(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def stacked_differences(x):
    """D as specified: |x_(k+1) - x_k| for consecutive frames, then |x_i - x_j| for every i and each j != i."""
    frames = x[0].transpose(0, 1)  # (F, C, H, W)
    count = len(frames)
    blocks = [(frames[1:] - frames[:-1]).abs()]
    blocks += [(frames[i] - frames[[j for j in range(count) if j != i]]).abs() for i in range(count)]
    return torch.stack(blocks)


# -- the maths ---------------------------------------------------------------------------------------------------


def test_frame_difference_mse_is_the_mse_of_the_stacked_differences():
    reference, generated = latents(1, 4, 5, 3, 2, seed=1), latents(1, 4, 5, 3, 2, seed=2)
    expected = torch.nn.functional.mse_loss(stacked_differences(generated), stacked_differences(reference))
    torch.testing.assert_close(frame_difference_mse(reference, generated), expected, rtol=1e-5, atol=0)
    assert frame_difference_mse(reference, reference) == 0
    with pytest.raises(ValueError, match=">= 2 frames"):
        frame_difference_mse(reference[:, :, :1], generated[:, :, :1])


def test_velocity_regularisation_keeps_the_path_component_and_scales_the_rest():
    velocity, path = latents(1, 6, 2, 3, 4, seed=3), latents(1, 6, 2, 3, 4, seed=4)
    torch.testing.assert_close(regularise_velocity(velocity, path, 1.0), velocity, rtol=0, atol=1e-6)
    parallel = regularise_velocity(velocity, path, 0.0)
    # gamma = 0 keeps only the projection on the path velocity, per position (products over the channel axis).
    coefficient = (velocity * path).sum(1, keepdim=True) / path.square().sum(1, keepdim=True)
    torch.testing.assert_close(parallel, coefficient * path, rtol=1e-5, atol=1e-6)
    regularised = regularise_velocity(velocity, path, 0.1)
    torch.testing.assert_close(regularised, parallel + 0.1 * (velocity - parallel), rtol=1e-5, atol=1e-6)
    assert ((regularised - parallel) * path).sum(1).abs().max() < 1e-4  # the scaled rest stays orthogonal
    zero = regularise_velocity(velocity, torch.zeros_like(path), 0.1)
    torch.testing.assert_close(zero, 0.1 * velocity)  # no path direction: everything is the orthogonal rest


def test_predicted_clean_latent():
    z, v, path = latents(1, 4, 3, 2, 2, seed=5), latents(1, 4, 3, 2, 2, seed=6), latents(1, 4, 3, 2, 2, seed=7)
    torch.testing.assert_close(predicted_clean(LatentPrediction(z, 0.6, v), 0.1), z - 0.6 * v)
    torch.testing.assert_close(predicted_clean(LatentPrediction(z, 0.6, v, path), 0.1),
                               z - 0.6 * regularise_velocity(v, path, 0.1))
    torch.testing.assert_close(predicted_clean(LatentPrediction(z, 0.0), 0.1), z)
    leaf = z.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(predicted_clean(LatentPrediction(leaf, 0.6, v.requires_grad_(True)), 0.1).sum(),
                                      leaf)
    torch.testing.assert_close(gradient, torch.ones_like(z))  # dx0/dz = I: the velocity is a constant


def test_latent_alignment_loss_parts_and_weights():
    reference, generated = LatentMotion(latents(1, 4, 3, 2, 2, seed=8)), LatentMotion(latents(1, 4, 3, 2, 2, seed=9))
    value = LatentAlignmentLoss(lambda_align=2.0, lambda_diff=3.0)(reference, generated)
    alignment = (generated.clean - reference.clean).square().mean()
    difference = frame_difference_mse(reference.clean, generated.clean)
    torch.testing.assert_close(value.total, 2 * alignment + 3 * difference)
    assert value.parts == pytest.approx({"alignment": alignment.item(), "frame_difference": difference.item()})
    with pytest.raises(ValueError, match="differ in shape"):
        LatentAlignmentLoss()(reference, LatentMotion(generated.clean[:, :, :2]))


# -- the extension point --------------------------------------------------------------------------------------------


def test_extractors_declare_what_they_read_and_get_exactly_that():
    reads = {preset.name: build_components(preset).extractor.reads for preset in PRESETS if preset.guided}
    assert reads == {
        "fastvmt": {ATTENTION}, "ditflow": {ATTENTION}, "ditflow_full": {ATTENTION}, "flowmotion": {PREDICTION},
        "fastvmt_flowmotion": {ATTENTION, PREDICTION}, "fastvmt_turbo": {ATTENTION},
    }
    prediction = LatentPrediction(torch.zeros(1, 2, 2, 2, 2), 0.5)
    features = AttentionFeatures(torch.zeros(2, 1, 1, 1, 4), torch.zeros(2, 1, 1, 1, 4))
    readings = Readings(attention=features, prediction=prediction)
    assert readings.input_for(frozenset({PREDICTION})) is prediction
    assert readings.input_for(frozenset({ATTENTION})) is features
    assert readings.input_for(frozenset({ATTENTION, PREDICTION})) is readings


def test_flowmotion_preset_values_are_the_methods():
    assert FLOWMOTION.extractor.options == {"gamma": 0.1}
    assert FLOWMOTION.loss.options == {"lambda_align": 20.0, "lambda_diff": 5.0}
    assert FLOWMOTION.scheduler.name == "every" and FLOWMOTION.inner_iterations == 3
    assert (FLOWMOTION.optimizer, FLOWMOTION.learning_rate, FLOWMOTION.weight_decay) == ("adam", (0.003, 0.003), 0.0)
    assert (FLOWMOTION.shift, FLOWMOTION.cfg_scale, FLOWMOTION.denoising_strength) == (3.0, 6.0, 1.0)
    assert FLOWMOTION.reference == "per_step_fresh"
    assert vars(build_components(FLOWMOTION.override(extractor="latent_prediction", loss="latent_alignment"))
                .loss) == vars(build_components(FLOWMOTION).loss)
    with pytest.raises(ValueError, match="gamma"):
        build_components(FLOWMOTION.override(**{"extractor.gamma": 1.5}))
    with pytest.raises(ValueError, match="at least 2 latent frames"):
        LatentPredictionExtractor().check(PatchBackbone().geometry(1, 64, 64).grid)


# -- on the tiny Wan --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    from fastvmt.backbones.tiny import tiny_backbone

    return tiny_backbone(seed=0)


@pytest.fixture(scope="module")
def clip():
    return np.random.default_rng(0).integers(0, 256, size=(9, 48, 64, 3), dtype=np.uint8)


def run(backbone, clip, strategy, **overrides):
    pipe = MotionTransferPipeline(backbone, resolve_strategy(strategy, overrides))
    return pipe(clip, "a tiny test", num_inference_steps=TINY_STEPS, seed=0, progress=False)


def _graph_outputs(output) -> list[bool]:
    tensors = output if isinstance(output, (tuple, list)) else (output,)
    return [t.requires_grad for t in tensors if isinstance(t, torch.Tensor)]


@pytest.mark.parametrize(("strategy", "through_dit"), [("flowmotion", False), ("fastvmt", True)])
def test_flowmotion_builds_no_graph_through_the_backbone(tiny, clip, strategy, through_dit):
    """With the DiT's weights trainable, any forward under autograd would record a graph: every module's output
    would require grad. FlowMotion's forwards never do; FastVMT's guidance forwards do (the check can fail)."""
    dit = tiny.dit
    graphs: list[bool] = []
    handles = [module.register_forward_hook(lambda m, a, out: graphs.extend(_graph_outputs(out)))
               for module in dit.modules()]
    dit.requires_grad_(True)
    try:
        counts = run(tiny, clip, strategy).report.counts
    finally:
        dit.requires_grad_(False)
        for handle in handles:
            handle.remove()
    assert graphs and any(graphs) == through_dit
    assert all(p.grad is None for p in dit.parameters())
    assert (counts.blocks_backward == 0) == (not through_dit)


def test_flowmotion_loss_falls_over_the_inner_iterations(tiny, clip):
    losses = run(tiny, clip, "flowmotion").report.losses
    totals = [entry["total"] for entry in losses]
    assert [entry["step"] for entry in losses] == [0] * FLOWMOTION.inner_iterations
    assert all(later < earlier for earlier, later in zip(totals, totals[1:])), totals
    assert set(losses[0]) == {"step", "total", "alignment", "frame_difference"}


@pytest.mark.parametrize(
    ("strategy", "overrides", "reads_per_step", "reference_velocity"),
    [
        ("flowmotion", {}, 3, True),
        ("flowmotion", {"scheduler": "interval"}, 1, True),  # every=3: velocity read at iteration 0, reused twice
        ("flowmotion", {"reference": "once"}, 3, False),  # clean latent: no reference forward
    ],
)
def test_counts_follow_the_schedule_on_the_tiny_wan(tiny, clip, strategy, overrides, reads_per_step,
                                                    reference_velocity):
    strategy_value = resolve_strategy(strategy, overrides)
    counts = run(tiny, clip, strategy_value).report.counts
    unguided = run(tiny, clip, strategy_value.override(extractor=None, loss=None, scheduler=None)).report.counts
    guided, inner = 1, strategy_value.inner_iterations
    assert (counts.guided_steps, counts.inner_iterations) == (guided, guided * inner)
    assert (counts.gradients_computed, counts.gradients_reused) == (guided * reads_per_step,
                                                                   guided * (inner - reads_per_step))
    assert counts.blocks_backward == 0
    blocks = tiny.num_blocks
    guidance_blocks = guided * (reference_velocity * blocks + reads_per_step * 2 * blocks)  # CFG: 2 passes
    assert counts.blocks_forward - unguided.blocks_forward == guidance_blocks


def test_hybrid_adds_the_velocity_forwards_to_fastvmts_and_logs_both_terms(tiny, clip):
    hybrid = run(tiny, clip, "fastvmt_flowmotion").report
    fastvmt = run(tiny, clip, "fastvmt").report
    assert dataclasses.replace(hybrid.counts, blocks_forward=0) == dataclasses.replace(fastvmt.counts, blocks_forward=0)
    extra = hybrid.counts.blocks_forward - fastvmt.counts.blocks_forward
    assert extra == tiny.num_blocks + hybrid.counts.gradients_computed * 2 * tiny.num_blocks  # reference; CFG
    assert set(hybrid.losses[0]) == {"step", "total", "amf", "window", "alignment", "frame_difference"}
    assert FASTVMT_FLOWMOTION.loss.options == {"lambda_amf": 5.0, "lambda_win": 1.0, "alpha": 0.2,
                                               "lambda_align": 20.0, "lambda_diff": 5.0}


def test_fresh_reference_noise_is_seeded(tiny, clip):
    first, again = (run(tiny, clip, "flowmotion").latents for _ in range(2))
    fixed = run(tiny, clip, "flowmotion", reference="per_step").latents
    assert torch.equal(first, again)
    assert not torch.equal(first, fixed)


# -- on the weight-free patch backbone ---------------------------------------------------------------------------------


def translation():
    """Frames of a texture and a disc moving right by 4 px a frame: 1 token a latent frame."""
    frames, _ = moving_scene(17, 64, 128, seed=1, pan=(0.0, 4.0), object_velocity=(0.0, 4.0), feature_size=16.0)
    return frames


def near_hard_flow(backbone, latents):
    """The block-matching flow (dense AMF at PATCH_TAU) from each latent frame to the next, (F - 1, H, W, 2)."""
    q, k, scale = reduce_heads(backbone.features(latents, 0.0, torch.empty(0), block=0), "mean_qk")
    flow = ops.full_amf(q, k, sf=2, tau=PATCH_TAU, scale=scale, backend="reference")
    pairs = ops.frame_pairs(q.shape[0], 2, "forward")
    return flow[pairs[:, 1] > pairs[:, 0]].reshape(-1, q.shape[1], q.shape[2], 2)


def interior_epe(a, b):
    return (a - b)[:, 1:-1, 1:-1].norm(dim=-1).mean().item()


def test_patch_backbone_flowmotion_transfers_a_translation():
    """Zero velocity makes the predicted latent the latent itself: guidance pulls a static video's latent towards
    the reference's (clean-latent reference), and with it the block-matching flow (measured: interior end-point
    error 1.00 token static, 0.00 guided)."""
    backbone = PatchBackbone()
    reference = translation()
    start = backbone.encode_video(frames_to_tensor(np.repeat(reference[:1], len(reference), axis=0)))
    strategy = resolve_strategy("flowmotion", {"reference": "once", "scheduler.guided_fraction": 1.0,
                                               "inner_iterations": 10, "learning_rate": (0.05, 0.05)})
    result = MotionTransferPipeline(backbone, strategy)(reference, "p", latents=start, num_inference_steps=8,
                                                        progress=False)
    wanted = near_hard_flow(backbone, backbone.encode_video(frames_to_tensor(reference)))
    static, guided = (interior_epe(near_hard_flow(backbone, z), wanted) for z in (start, result.latents))
    print(f"interior end-point error: {static:.3f} token (static start) -> {guided:.3f} (flowmotion)")
    assert static > 0.5
    assert guided < 0.1
    assert backbone.velocity_calls == 8 + 8 * 10  # denoising, then one per guided iteration; none for the reference


def test_reusing_the_velocity_re_evaluates_the_loss_at_the_moved_latent():
    """On the patch backbone the velocity is always 0, so a reused velocity equals a fresh one: reusing it (interval)
    must give exactly the latents of reading it every iteration, with a third of the velocity reads."""
    reference = translation()
    outputs, reads = [], []
    for scheduler in ("every", "interval"):
        backbone = PatchBackbone()
        strategy = resolve_strategy("flowmotion", {"scheduler": scheduler, "reference": "once"})
        result = MotionTransferPipeline(backbone, strategy)(reference, "p", num_inference_steps=PATCH_STEPS,
                                                            progress=False)
        outputs.append(result.latents)
        reads.append(backbone.velocity_calls - PATCH_STEPS)
    assert torch.equal(*outputs)
    assert reads == [2 * 3, 2 * 1]
