"""The amortised cost of prompts sharing one saved motion (docs/algorithm.md#motion-embeddings)."""

import json

import pytest
from typer.testing import CliRunner

from fastvmt.backbones.architecture import RELEASED_DITS
from fastvmt.cli import app
from fastvmt.costmodel import RECIPES, Depth, forward_flops, run_cost
from fastvmt.costmodel.amortised import MOTION_RECIPES, amortised_cost
from fastvmt.geometry import token_grid

GRID = token_grid(81, 480, 832)


@pytest.mark.parametrize("size", list(RELEASED_DITS))
def test_sharing_a_motion_costs_one_guided_run_plus_plain_sampling(size):
    config, recipe = RELEASED_DITS[size], MOTION_RECIPES["ditflow_rope"]
    guided = run_cost(recipe, config, GRID)
    # Plain sampling: every step's two CFG passes through the whole DiT, nothing else.
    plain = guided.steps * 2 * forward_flops(config, GRID, Depth.full(config))
    costs = [amortised_cost(recipe, config, GRID, n) for n in (1, 4, 16)]
    assert costs[0].shared == costs[0].repeated == guided.total
    for cost in costs:
        assert cost.plain == plain
        assert cost.shared == guided.total + (cost.prompts - 1) * plain
        assert cost.repeated == cost.prompts * guided.total
    speedups = [cost.speedup for cost in costs]
    assert speedups == sorted(speedups) and speedups[-1] < guided.total / plain
    # The rope target's guidance costs the latent target's: the same forwards and backward.
    assert guided.total == run_cost(RECIPES["ditflow"], config, GRID).total


def test_only_recipes_that_save_motion_are_amortised():
    with pytest.raises(ValueError, match="target='rope'"):
        amortised_cost(RECIPES["ditflow"], RELEASED_DITS["1.3B"], GRID, 4)
    with pytest.raises(ValueError, match="prompts"):
        amortised_cost(MOTION_RECIPES["ditflow_rope"], RELEASED_DITS["1.3B"], GRID, 0)


def test_bench_cost_prompts_prints_the_model():
    runner = CliRunner()
    result = runner.invoke(app, ["bench", "cost", "--prompts", "1", "--prompts", "16", "--frames", "81", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["rows"]
    assert len(rows) == len(RELEASED_DITS) * len(MOTION_RECIPES) * 2
    for row in rows:
        cost = amortised_cost(MOTION_RECIPES[row["strategy"]], RELEASED_DITS[row["backbone"]], GRID, row["prompts"])
        assert (row["shared"], row["repeated"]) == (cost.shared, cost.repeated)
    table = runner.invoke(app, ["bench", "cost", "--prompts", "4", "--frames", "81"])
    assert table.exit_code == 0 and "ditflow_rope-fullpass" in table.output
    refused = runner.invoke(app, ["bench", "cost", "--prompts", "4", "--strategy", "fastvmt"])
    assert refused.exit_code == 2 and "--prompts costs the motion-embedding recipe" in refused.output
