"""Guidance pulls the AMF of a static video to the reference's translation (at the guidance temperature).

The weight-free PatchBackbone has Q = K = the latent's own normalised patches and zero velocity, so the only
thing that changes the latents is guidance, and the AMF of a latent video is the block-matching flow of its
content. Starting from a static video, guided sampling towards a translating reference must make the output's
AMF at the guidance temperature (tau = 40: the 48 pooled colours of a token give logits up to 5.8, soft next
to the near-hard PATCH_TAU) equal the reference's in the interior.

Measured: dense guidance brings the dense AMF from an end-point error of 0.66 token (static start) to 0.07;
windowed guidance brings the windowed AMF from 0.83 to 0.23. On this toy backbone windowed guidance does not
pin the dense AMF (the optimiser is free to use keys outside each tile's window), so each extractor is judged
by its own flow. What guidance changes is the texture, not where it is: the near-hard block-matching flow
(PATCH_TAU) of the output stays as far from the reference's as the static start's (dense: 0.70 -> 0.67,
windowed: 0.70 -> 0.91), because with no generative prior a texture that fools the soft match is closer than
a moved one. The test pins what guidance promises, the flow it optimises.
"""

import numpy as np
import pytest
import torch

from fastvmt import ops
from fastvmt.backbones.patch import PatchBackbone
from fastvmt.generation.pipeline import MotionTransferPipeline
from fastvmt.io.frames import frames_to_tensor, tensor_to_frames
from fastvmt.strategies.components import resolve_strategy
from fastvmt.strategies.heads import reduce_heads
from fastvmt.strategies.spec import Component

SHIFT_TOKENS = (0, 1)  # (rows, cols) per latent frame
TAU = 40.0
WINDOWED = {"tile": (2, 2), "window": 5}


def translating_clip(frames=9, size=128, seed=0):
    """Pixel frames of random 8x8-pixel blocks (one latent pixel each) that move by SHIFT_TOKENS tokens every 4
    frames: a camera window sliding over a larger random texture (new content enters at the border)."""
    generator = torch.Generator().manual_seed(seed)
    latent, margin = size // 8, 2 * (frames // 4) * max(map(abs, SHIFT_TOKENS))
    texture = torch.rand(3, latent + margin, latent + margin, generator=generator) * 2 - 1
    video = []
    for t in range(frames):
        dy, dx = (2 * s * (t // 4) for s in SHIFT_TOKENS)  # 2 latent pixels = 1 token
        latent_frame = texture[:, margin - dy : margin - dy + latent, margin - dx : margin - dx + latent]
        video.append(latent_frame.repeat_interleave(8, 1).repeat_interleave(8, 2))
    return tensor_to_frames(torch.stack(video))


def encode(backbone, frames):
    return backbone.encode_video(frames_to_tensor(frames))


def flow(backbone, latents, extractor):
    """The AMF of ``latents`` as (pairs, H, W, 2), dense or windowed, at the guidance temperature."""
    q, k, scale = reduce_heads(backbone.features(latents, 0.0, torch.empty(0), block=0), "mean_qk")
    if extractor == "dense_amf":
        displacement = ops.full_amf(q, k, tau=TAU, scale=scale, backend="reference")
    else:
        displacement = ops.windowed_amf(q, k, tau=TAU, scale=scale, backend="reference", **WINDOWED).displacement
    return displacement.reshape(-1, q.shape[1], q.shape[2], 2)


def interior_epe(flow_a, flow_b):
    return (flow_a - flow_b)[:, 1:-1, 1:-1].norm(dim=-1).mean().item()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("extractor", "options"), [("dense_amf", {"tau": TAU}), ("windowed_amf", {"tau": TAU, **WINDOWED})]
)
def test_guidance_pulls_a_static_videos_amf_to_the_references(extractor, options):
    backbone = PatchBackbone()
    reference = translating_clip()
    start = encode(backbone, np.repeat(reference[:1], len(reference), axis=0))
    strategy = resolve_strategy(
        "fastvmt",
        {
            "extractor": Component(extractor, options),
            "loss.lambda_win": 0.0 if extractor == "dense_amf" else 1.0,
            "scheduler.guided_fraction": 1.0,
            "inner_iterations": 20,
            "learning_rate": (0.01, 0.005),
            "reference": "once",
        },
    )
    result = MotionTransferPipeline(backbone, strategy)(
        reference, "translate", latents=start, num_inference_steps=8, progress=False, seed=0
    )

    wanted = flow(backbone, encode(backbone, reference), extractor)
    epe_static = interior_epe(flow(backbone, start, extractor), wanted)
    epe_guided = interior_epe(flow(backbone, result.latents, extractor), wanted)
    print(f"{extractor}: interior end-point error {epe_static:.3f} (static start) -> {epe_guided:.3f} (guided)")
    assert epe_static > 0.6
    assert epe_guided < 0.5
    assert epe_guided < epe_static / 2
