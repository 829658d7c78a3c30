"""The flow-matching schedule follows diffsynth's Wan template."""

import pytest
import torch

from fastvmt.generation.sampling import FlowMatchSchedule, add_noise, steps_run


@pytest.mark.parametrize(("steps", "shift", "strength"), [(50, 7.0, 0.75), (50, 5.0, 1.0), (7, 3.0, 0.3)])
def test_matches_diffsynth_wan_schedule(steps, shift, strength):
    from diffsynth.diffusion.flow_match import FlowMatchScheduler

    sigmas, timesteps = FlowMatchScheduler.set_timesteps_wan(steps, denoising_strength=strength, shift=shift)
    ours = FlowMatchSchedule.wan(steps, shift=shift, denoising_strength=strength)
    assert len(ours) == steps
    torch.testing.assert_close(torch.tensor(ours.sigmas, dtype=torch.float64), sigmas.double(), rtol=1e-6, atol=1e-6)
    ours_timesteps = torch.tensor([ours.timestep(k) for k in range(steps)], dtype=torch.float64)
    torch.testing.assert_close(ours_timesteps, timesteps.double(), rtol=1e-6, atol=1e-4)


def test_euler_steps_reach_the_clean_sample_for_the_exact_velocity():
    clean, noise = torch.randn(4, 5), torch.randn(4, 5)
    schedule = FlowMatchSchedule.wan(10, shift=7.0, denoising_strength=0.8)
    x = add_noise(clean, noise, schedule.sigmas[0])
    for k in range(len(schedule)):
        x = schedule.step(x, noise - clean, k)  # the flow-matching target velocity
    torch.testing.assert_close(x, clean)


@pytest.mark.parametrize(("steps", "strength", "shift"),
                         [(0, 1.0, 5.0), (10, 0.0, 5.0), (10, 1.5, 5.0), (10, 1.0, 0.0)])
def test_bad_schedule_arguments_raise(steps, strength, shift):
    with pytest.raises(ValueError):
        FlowMatchSchedule.wan(steps, shift=shift, denoising_strength=strength)


def _shifted(u: float, shift: float) -> float:
    return shift * u / (1 + (shift - 1) * u)


@pytest.mark.parametrize(("steps", "strength", "shift"),
                         [(50, 0.75, 7.0), (50, 1.0, 7.0), (20, 0.5, 3.0), (7, 0.3, 5.0), (100, 0.29, 7.0)])
def test_truncated_start_runs_a_suffix_of_the_full_schedule(steps, strength, shift):
    full = FlowMatchSchedule.wan(steps, shift=shift)
    truncated = FlowMatchSchedule.wan(steps, shift=shift, denoising_strength=strength, strength_semantics="truncate")
    spread = FlowMatchSchedule.wan(steps, shift=shift, denoising_strength=strength)
    count = steps_run(steps, strength, "truncate")
    assert len(truncated) == count == round(steps * strength, 6) // 1
    assert truncated.sigmas == full.sigmas[steps - count:]
    # Starts at or below the strength's sigma (diffsynth's start), within float64 rounding; one more step would not.
    assert truncated.sigmas[0] <= spread.sigmas[0] + 1e-12
    assert count == steps or full.sigmas[steps - count - 1] > spread.sigmas[0]
    assert len(spread) == steps_run(steps, strength, "diffsynth") == steps
    assert spread.sigmas[0] == pytest.approx(_shifted(strength, shift), rel=1e-12)


def test_truncated_start_at_full_strength_is_the_full_schedule():
    for steps in (1, 10, 50):
        assert FlowMatchSchedule.wan(steps, shift=7.0, strength_semantics="truncate") == FlowMatchSchedule.wan(
            steps, shift=7.0)


def test_truncating_to_no_step_raises_and_names_the_fix():
    with pytest.raises(ValueError, match="use at least 4 steps"):
        FlowMatchSchedule.wan(3, shift=7.0, denoising_strength=0.3, strength_semantics="truncate")
    with pytest.raises(ValueError, match="strength_semantics must be one of"):
        FlowMatchSchedule.wan(10, shift=7.0, strength_semantics="img2img")
