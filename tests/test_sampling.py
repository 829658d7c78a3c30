"""The flow-matching schedule follows diffsynth's Wan template."""

import pytest
import torch

from fastvmt.generation.sampling import FlowMatchSchedule, add_noise


@pytest.mark.parametrize(("steps", "shift", "strength"), [(50, 7.0, 0.75), (50, 5.0, 1.0), (7, 3.0, 0.3)])
def test_matches_diffsynth_wan_schedule(steps, shift, strength):
    from diffsynth.diffusion.flow_match import FlowMatchScheduler

    sigmas, timesteps = FlowMatchScheduler.set_timesteps_wan(steps, denoising_strength=strength, shift=shift)
    ours = FlowMatchSchedule.wan(steps, shift=shift, denoising_strength=strength)
    assert len(ours) == steps
    torch.testing.assert_close(torch.tensor(ours.sigmas, dtype=torch.float64), sigmas.double(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(torch.tensor([ours.timestep(k) for k in range(steps)], dtype=torch.float64), timesteps.double(), rtol=1e-6, atol=1e-4)


def test_euler_steps_reach_the_clean_sample_for_the_exact_velocity():
    clean, noise = torch.randn(4, 5), torch.randn(4, 5)
    schedule = FlowMatchSchedule.wan(10, shift=7.0, denoising_strength=0.8)
    x = add_noise(clean, noise, schedule.sigmas[0])
    for k in range(len(schedule)):
        x = schedule.step(x, noise - clean, k)  # the flow-matching target velocity
    torch.testing.assert_close(x, clean)


@pytest.mark.parametrize(("steps", "strength", "shift"), [(0, 1.0, 5.0), (10, 0.0, 5.0), (10, 1.5, 5.0), (10, 1.0, 0.0)])
def test_bad_schedule_arguments_raise(steps, strength, shift):
    with pytest.raises(ValueError):
        FlowMatchSchedule.wan(steps, shift=shift, denoising_strength=strength)
