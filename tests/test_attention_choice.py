"""The DiT's attention kernel (docs/algorithm.md#attention-kernels): diffsynth's names, a clear error for a kernel
whose package is missing (none of flash-attn, sageattention, xformers is installed here: only the SDPA path runs),
and a kernel without a backward serving only the calls without gradient (a stand-in for SageAttention)."""

import logging

import pytest
import torch
from typer.testing import CliRunner

from fastvmt.backbones.attention import ATTENTION_CHOICES, resolve_attention
from fastvmt.backbones.wan import WanBackbone
from fastvmt.cli import app
from tests.support.tiny_wan import tiny_wan_dir  # noqa: F401  (fixture)

MISSING = [name for name in ATTENTION_CHOICES if name not in ("auto", "torch")]
#: The same SDPA through diffsynth's two wrappers: only the reshapes differ, so the results are equal up to rounding.
TOLERANCE = {"rtol": 1e-6, "atol": 1e-6}


def _installed(kernel):
    from diffsynth.core.attention import attention

    flags = {"flash_attention_2": "FLASH_ATTN_2_AVAILABLE", "flash_attention_3": "FLASH_ATTN_3_AVAILABLE",
             "flash_attention_4": "FLASH_ATTN_4_AVAILABLE", "sage_attention": "SAGE_ATTN_AVAILABLE",
             "xformers": "XFORMERS_AVAILABLE"}
    return getattr(attention, flags[kernel])


@pytest.mark.parametrize("kernel", MISSING)
def test_a_kernel_whose_package_is_missing_is_a_clear_error(kernel):
    if _installed(kernel):
        pytest.skip(f"{kernel}'s package is installed here")
    with pytest.raises(ValueError, match=f"attention '{kernel}' needs the package .* not installed"):
        resolve_attention(kernel)


def test_auto_and_torch_resolve_here_and_an_unknown_name_is_refused():
    assert resolve_attention("torch").kernel == resolve_attention("torch").gradient_kernel == "torch"
    assert resolve_attention("torch").note is None
    assert resolve_attention("auto").kernel in ("flash_attention_3", "flash_attention_2", "sage_attention", "torch")
    with pytest.raises(ValueError, match="attention must be one of auto, torch"):
        resolve_attention("flash")


def test_the_cli_refuses_a_missing_kernel_before_loading_weights(tmp_path, monkeypatch, tiny_wan_dir):
    if _installed("sage_attention"):
        pytest.skip("sageattention is installed here")
    monkeypatch.setattr(WanBackbone, "from_pretrained", lambda *a, **k: pytest.fail("weights were loaded"))
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    result = CliRunner().invoke(app, ["transfer", str(clip), "--prompt", "a fox", "--model-dir", str(tiny_wan_dir),
                                      "--attention", "sage_attention", "--out", str(tmp_path / "out.mp4")])
    assert result.exit_code == 2, result.output
    assert "error: attention 'sage_attention' needs the package sageattention" in result.output


def test_the_sdpa_kernel_equals_diffsynths_own_attention_module():
    from diffsynth.models.wan_video_dit import AttentionModule

    from fastvmt.backbones.kernel_attention import KernelAttention

    q, k, v = torch.randn(3, 2, 24, 4 * 16, generator=torch.Generator().manual_seed(0))
    expected = AttentionModule(num_heads=4)(q, k, v)
    torch.testing.assert_close(KernelAttention(4, resolve_attention("torch"))(q, k, v), expected, **TOLERANCE)


@pytest.fixture
def forward_only_sage(monkeypatch):
    """A stand-in SageAttention: SDPA whose result has no backward, counting its calls."""
    from diffsynth.core.attention import attention

    calls = []

    def sage(q, k, v, q_pattern, k_pattern, v_pattern, out_pattern, dims=None, scale=None):
        calls.append(torch.is_grad_enabled())
        with torch.no_grad():
            return attention.torch_sdpa(q, k, v, q_pattern, k_pattern, v_pattern, out_pattern, dims, scale=scale)

    monkeypatch.setattr(attention, "SAGE_ATTN_AVAILABLE", True)
    monkeypatch.setattr(attention, "sage_attention", sage)
    return calls


def test_a_kernel_without_backward_serves_the_calls_without_gradient_and_the_guidance_falls_back(
        forward_only_sage, tiny_wan_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="fastvmt.backbones.kernel_attention"):
        sage = WanBackbone.from_pretrained(tiny_wan_dir, device="cpu", dtype=torch.float32,
                                           attention="sage_attention")
    plain = WanBackbone.from_pretrained(tiny_wan_dir, device="cpu", dtype=torch.float32, attention="torch")
    assert sage.attention.gradient_kernel == "torch"
    assert "sage_attention has no backward" in caplog.text and sage.attention.note in caplog.text
    latents = torch.randn(sage.geometry(5, 32, 32).latent_shape, generator=torch.Generator().manual_seed(0))
    context = sage.encode_prompt("a red car")

    with torch.no_grad():
        velocity = sage.velocity(latents, 700.0, context)
    assert forward_only_sage and not any(forward_only_sage)  # the DiT's attention calls ran the stand-in
    torch.testing.assert_close(velocity, plain.velocity(latents, 700.0, context), **TOLERANCE)

    forward_only_sage.clear()
    moving = latents.clone().requires_grad_(True)
    features = sage.features(moving, 700.0, context, block=3)
    (features.q.square().sum() + features.k.square().sum()).backward()
    assert forward_only_sage == []  # the guidance forward ran the kernel with a backward
    assert moving.grad is not None and moving.grad.abs().sum() > 0

    forward_only_sage.clear()
    plain.velocity(latents, 700.0, context)
    assert forward_only_sage == []  # another backbone in the same process keeps its own kernel


def test_the_sidecar_records_the_kernels_and_the_fallback_note(forward_only_sage, tiny_wan_dir, tmp_path):
    import json

    from fastvmt.io import write_video
    from fastvmt.synthetic import moving_scene

    write_video(tmp_path / "scene.mp4", moving_scene(9, 48, 64, seed=3, pan=(0.0, 2.0))[0], fps=16)
    result = CliRunner().invoke(app, [
        "transfer", str(tmp_path / "scene.mp4"), "--prompt", "a ball", "--model-dir", str(tiny_wan_dir),
        "--out", str(tmp_path / "run.mp4"), "--dtype", "float32", "--device", "cpu", "--attention", "sage_attention",
        "--frames", "9", "--height", "48", "--width", "64", "--steps", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "run.json").read_text())["config"]
    assert config["attention"] == "sage_attention"
    assert (config["environment"]["attention"], config["environment"]["gradient_attention"]) == (
        "sage_attention", "torch")
    assert config["attention_note"] == resolve_attention("sage_attention").note
    assert forward_only_sage  # the run's DiT calls without gradient ran the stand-in
