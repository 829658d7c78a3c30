"""A run whose numbers turn NaN or infinite stops at that step with an error naming it, and writes nothing."""

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fastvmt.backbones.patch import PatchBackbone
from fastvmt.generation.finite import NonFiniteError
from fastvmt.generation.pipeline import MotionTransferPipeline
from fastvmt.strategies.components import resolve_strategy


def clip():
    return np.random.default_rng(0).integers(0, 256, size=(9, 64, 64, 3), dtype=np.uint8)


def run(strategy="no_transfer", callbacks=(), **overrides):
    pipe = MotionTransferPipeline(PatchBackbone(), resolve_strategy(strategy, overrides))
    return pipe(clip(), "a test prompt", num_inference_steps=4, progress=False, callbacks=callbacks)


def poison(tensor):
    return torch.full_like(tensor, float("nan"))


def test_latents_a_callback_poisons_stop_the_run_at_that_step():
    seen = []

    def callback(state):
        seen.append(state.step)
        return poison(state.latents) if state.step == 1 else None

    with pytest.raises(NonFiniteError, match=r"after the callbacks: 2,304 of 2,304 values are NaN .* step 1 "):
        run(callbacks=[callback])
    assert seen == [0, 1]  # nothing ran after the step that turned non-finite


def test_a_non_finite_velocity_names_the_velocity_and_its_step(monkeypatch):
    calls = []

    def velocity(self, latents, *args, **kwargs):
        calls.append(1)
        return latents * float("inf") if len(calls) == 3 else torch.zeros_like(latents)

    monkeypatch.setattr(PatchBackbone, "velocity", velocity)
    with pytest.raises(NonFiniteError, match=r"the velocity .* denoising step 2 \(of 0..3\)"):
        run()


def test_a_non_finite_decode_is_refused(monkeypatch):
    monkeypatch.setattr(PatchBackbone, "decode", lambda self, latents: poison(torch.zeros(9, 3, 64, 64)))
    with pytest.raises(NonFiniteError, match="the decoded video: .* values are NaN or infinite"):
        run()


def test_a_non_finite_guidance_gradient_names_the_step(monkeypatch):
    from fastvmt.interfaces import LossValue
    from fastvmt.strategies.losses import AMFWindowLoss

    real = AMFWindowLoss.__call__
    monkeypatch.setattr(AMFWindowLoss, "__call__",
                        lambda self, reference, generated: LossValue(real(self, reference, generated).total
                                                                     * float("nan"), {}))
    with pytest.raises(NonFiniteError, match=r"guidance gradient of iteration 0: .* denoising step 0 "):
        run("fastvmt", **{"extractor.tile": (2, 2), "extractor.window": 3})


def test_finite_runs_pass_the_checks():
    assert np.isfinite(run().latents.float().numpy()).all()


@pytest.mark.slow
def test_the_cli_reports_a_non_finite_run_on_one_line_with_exit_3_and_writes_nothing(tmp_path, monkeypatch):
    from fastvmt.backbones.tiny import write_tiny_checkpoint
    from fastvmt.cli import app
    from fastvmt.generation.sampling import FlowMatchSchedule
    from fastvmt.io import write_video
    from fastvmt.synthetic import moving_scene

    frames, _ = moving_scene(9, 48, 64, seed=1)
    reference = write_video(tmp_path / "clip.mp4", frames, fps=16)
    model = write_tiny_checkpoint(tmp_path / "tiny", seed=0)
    real_step = FlowMatchSchedule.step
    monkeypatch.setattr(FlowMatchSchedule, "step", lambda self, latents, velocity, step: (
        poison(latents) if step == 1 else real_step(self, latents, velocity, step)))
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(app, [
        "transfer", str(reference), "--prompt", "a ball", "--model-dir", str(model), "--out", str(out / "o.mp4"),
        "--frames", "9", "--height", "48", "--width", "64", "--steps", "3", "--strategy", "no_transfer",
        "--dtype", "float32", "--no-progress"])
    assert result.exit_code == 3, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "denoising step 1" in errors[0] and "nothing was written" in errors[0], result.output
    assert "Traceback" not in result.output and list(out.iterdir()) == []
