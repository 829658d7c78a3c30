"""A truncated start (``strength_semantics="truncate"``, the ``fastvmt_turbo`` preset) in a whole run: the steps
that run, the guided share of them and what the report records."""

import numpy as np

from fastvmt.backbones.patch import PatchBackbone
from fastvmt.generation.pipeline import MotionTransferPipeline
from fastvmt.generation.sampling import FlowMatchSchedule
from fastvmt.strategies.components import resolve_strategy
from fastvmt.strategies.schedulers import guided_step_count

#: Windows for the 64 x 64 test video; no step cache (the weight-free backbone has none; tests/test_step_cache.py).
SMALL_FASTVMT = {"extractor.tile": (2, 2), "extractor.window": 3, "step_cache": None}


def run(preset: str, steps: int = 20):
    strategy = resolve_strategy(preset, SMALL_FASTVMT)
    seen = []
    video = np.random.default_rng(0).integers(0, 256, size=(9, 64, 64, 3), dtype=np.uint8)
    result = MotionTransferPipeline(PatchBackbone(), strategy)(
        video, "a test prompt", num_inference_steps=steps, progress=False,
        callbacks=[lambda state: seen.append((state.sigma, state.guided))],
    )
    return result, seen


def test_turbo_run_takes_the_full_schedules_tail_and_guides_its_first_steps():
    result, seen = run("fastvmt_turbo")
    counts, strategy = result.report.counts, result.report.config["strategy"]
    full = FlowMatchSchedule.wan(20, shift=strategy["shift"])
    assert strategy["strength_semantics"] == "truncate" and strategy["denoising_strength"] == 0.75
    assert counts.steps == len(seen) == 15  # floor(0.75 * 20)
    assert [sigma for sigma, _ in seen] == list(full.sigmas[5:])
    guided = guided_step_count(strategy["scheduler"]["options"]["guided_fraction"], 15)
    assert counts.guided_steps == guided == 3
    assert [flag for _, flag in seen] == [True] * guided + [False] * (15 - guided)  # the first of the steps run


def test_diffsynth_start_runs_every_step():
    result, seen = run("fastvmt")
    assert result.report.counts.steps == len(seen) == 20
    assert result.report.counts.guided_steps == 4
    assert result.report.config["strategy"]["strength_semantics"] == "diffsynth"
