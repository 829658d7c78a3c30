"""The GPU memory model (docs/algorithm.md#memory): its activation term against torch's own count of diffsynth's
blocks on the meta device, how each option moves the peak, the GPU sizes, and ``fastvmt bench cost --memory``."""

import dataclasses
import json

import pytest
from typer.testing import CliRunner

from fastvmt.backbones.architecture import RELEASED_DITS
from fastvmt.backbones.tiny import TINY_DIT
from fastvmt.cli import app
from fastvmt.costmodel import RECIPES
from fastvmt.costmodel.memory import (
    COMMON_GPUS_GB,
    CUDA_RESERVE_BYTES,
    DTYPE_BYTES,
    MemoryOptions,
    guidance_activation_bytes,
    run_memory,
    smallest_gpu,
    velocity_working_bytes,
    weight_bytes,
)
from fastvmt.costmodel.saved import meta_guidance_activations
from fastvmt.geometry import token_grid

#: The issue asks for 10 %; the op-by-op count leaves only a few small tensors (timestep modulation) out.
ACTIVATION_TOLERANCE = 0.02
FULL = token_grid(81, 480, 832)


@pytest.mark.parametrize("config, grid, block", [
    (TINY_DIT, token_grid(17, 256, 320), 14),  # every block before the presets' captured one
    (RELEASED_DITS["1.3B"], FULL, 3),  # real widths at the real token grid, fewer blocks to keep it quick
    (RELEASED_DITS["14B"], token_grid(33, 480, 832), 2),
])
@pytest.mark.parametrize("checkpointing", [False, True])
def test_activation_model_is_within_tolerance_of_torchs_count(config, grid, block, checkpointing):
    counted = meta_guidance_activations(config, grid, block, checkpointing=checkpointing)
    modelled = guidance_activation_bytes(config, grid, block, DTYPE_BYTES["bfloat16"], checkpointing)
    assert abs(modelled - counted) <= ACTIVATION_TOLERANCE * counted


def test_each_option_moves_only_its_own_part():
    recipe, config = RECIPES["fastvmt"], RELEASED_DITS["1.3B"]
    plain = run_memory(recipe, config, FULL, MemoryOptions())
    checkpointed = run_memory(recipe, config, FULL, MemoryOptions(checkpointing=True))
    offloaded = run_memory(recipe, config, FULL, MemoryOptions(text_encoder_offloaded=True))
    merged = run_memory(recipe, config, FULL, MemoryOptions(cfg_batch=True))
    assert checkpointed.guidance["activations"] < plain.guidance["activations"] / 10
    assert checkpointed.guidance["backward"] > plain.guidance["backward"]  # one block recomputed at a time
    assert checkpointed.guidance_peak < plain.guidance_peak and checkpointed.weights == plain.weights
    assert plain.weights.keys() - offloaded.weights.keys() == {"text encoder"}
    assert plain.peak - offloaded.peak == plain.weights["text encoder"]
    assert merged.denoising["velocity forward"] == 2 * plain.denoising["velocity forward"]
    assert merged.guidance == plain.guidance
    assert velocity_working_bytes(config, FULL, 2, 2) == 2 * velocity_working_bytes(config, FULL, 2, 1)


def test_weights_scale_with_the_dtype_and_the_14b_is_about_ten_times_the_13b():
    bf16, fp32 = MemoryOptions(), MemoryOptions(dtype="float32")
    small, large = (weight_bytes(RELEASED_DITS[size], bf16)["DiT"] for size in ("1.3B", "14B"))
    assert weight_bytes(RELEASED_DITS["1.3B"], fp32)["DiT"] == 2 * small
    assert 9 < large / small < 11


def test_activations_grow_with_the_captured_block_and_the_video():
    config = RELEASED_DITS["1.3B"]
    by_block = [guidance_activation_bytes(config, FULL, block, 2, False) for block in (0, 7, 14)]
    assert by_block[0] < by_block[1] < by_block[2]
    assert guidance_activation_bytes(config, token_grid(33, 480, 832), 14, 2, False) < by_block[2]


def test_smallest_gpu_leaves_the_reserve_free():
    for gb in COMMON_GPUS_GB:
        assert smallest_gpu(gb * 10**9 - CUDA_RESERVE_BYTES) == gb
    assert smallest_gpu(COMMON_GPUS_GB[0] * 10**9 - CUDA_RESERVE_BYTES + 1) == COMMON_GPUS_GB[1]
    assert smallest_gpu(COMMON_GPUS_GB[-1] * 10**9) is None
    with pytest.raises(ValueError, match="dtype must be one of"):
        MemoryOptions(dtype="int8")


def test_bench_cost_memory_json_matches_the_model():
    result = CliRunner().invoke(app, ["bench", "cost", "--memory", "--json", "--backbone", "1.3B", "--frames", "81",
                                      "--strategy", "fastvmt", "--strategy", "fastvmt-release"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert {row["strategy"] for row in rows} == {"fastvmt"}  # the release's own guidance forward is not modelled
    options = {row["options"]: row for row in rows}
    for row in rows:
        assert row["tokens"] == [21, 30, 52]
        assert row["peak"] == max(row["guidance_peak"], row["denoising_peak"])
        assert row["smallest_gpu_gb"] == smallest_gpu(row["peak"])
    expected = run_memory(RECIPES["fastvmt"], RELEASED_DITS["1.3B"], FULL, MemoryOptions(checkpointing=True))
    assert options["checkpointing"]["peak"] == expected.peak


def test_bench_cost_memory_table_and_errors():
    runner = CliRunner()
    table = runner.invoke(app, ["bench", "cost", "--memory", "--backbone", "1.3B", "--frames", "33"])
    assert table.exit_code == 0, table.output
    assert "Wan2.1 1.3B, tokens 9x30x52" in table.output and "checkpointing" in table.output
    alone = runner.invoke(app, ["bench", "cost", "--check-activations"])
    assert alone.exit_code == 2 and "--check-activations goes with --memory" in alone.output
    release = runner.invoke(app, ["bench", "cost", "--memory", "--strategy", "fastvmt-release"])
    assert release.exit_code == 2 and "covers this package's runs" in release.output


def test_checkpointing_adds_one_forward_of_the_blocks_before_the_captured_one_to_each_backward():
    from fastvmt.costmodel import Depth, forward_flops, run_cost

    recipe, config, grid = RECIPES["fastvmt"], RELEASED_DITS["1.3B"], FULL
    checkpointed = dataclasses.replace(recipe, strategy=recipe.strategy.override(guidance_checkpointing=True))
    plain, recomputed = run_cost(recipe, config, grid), run_cost(checkpointed, config, grid)
    extra = {phase: recomputed.phases[phase] - plain.phases[phase] for phase in plain.phases}
    blocks = recipe.strategy.block
    per_gradient = forward_flops(config, grid, Depth(blocks)) - forward_flops(config, grid, Depth(0))
    assert extra == {**dict.fromkeys(plain.phases, 0), "guidance backward": plain.gradients * per_gradient}
    # blocks 0..b-1 are nearly all of the early-exit guidance forward (which adds embeddings and block b's q/k/v)
    assert 0.9 < extra["guidance backward"] / plain.phases["guidance forward"] < 1
    assert "checkpointed" in checkpointed.summary


def test_bench_cost_guidance_checkpointing_costs_every_strategy_checkpointed():
    args = ["bench", "cost", "--json", "--backbone", "1.3B", "--frames", "33", "--strategy", "fastvmt"]
    plain, checkpointed = (json.loads(CliRunner().invoke(app, [*args, *flag]).stdout)["rows"][0]
                           for flag in ([], ["--guidance-checkpointing"]))
    assert checkpointed["total"] > plain["total"]
    assert checkpointed["phases"]["denoising (CFG)"] == plain["phases"]["denoising (CFG)"]
