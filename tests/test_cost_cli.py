"""``fastvmt bench cost``: the table and its JSON agree with the cost model."""

import json

from typer.testing import CliRunner

from fastvmt.backbones.architecture import RELEASED_DITS
from fastvmt.cli import app
from fastvmt.costmodel import RECIPES, run_cost
from fastvmt.geometry import token_grid


def test_bench_cost_json_matches_the_model_and_rounds_frames_up():
    result = CliRunner().invoke(app, ["bench", "cost", "--backbone", "14B", "--frames", "32", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert {row["strategy"] for row in rows} == set(RECIPES)
    for row in rows:
        assert (row["frames_asked"], row["frames"], row["tokens"]) == (32, 33, [9, 30, 52])
        expected = run_cost(RECIPES[row["strategy"]], RELEASED_DITS["14B"], token_grid(33, 480, 832))
        assert row["total"] == expected.total == sum(row["phases"].values())
        assert row["seconds_floor"] == expected.total / 790e12
    by_name = {row["strategy"]: row for row in rows}
    assert by_name["ditflow"]["speedup_vs_ditflow"] == 1.0
    assert by_name["fastvmt"]["speedup_vs_ditflow"] > by_name["fastvmt-release"]["speedup_vs_ditflow"]


def test_bench_cost_table_and_errors():
    runner = CliRunner()
    table = runner.invoke(app, ["bench", "cost", "--backbone", "1.3B", "--frames", "81"])
    assert table.exit_code == 0 and "Wan2.1 1.3B, 81 frames" in table.stdout
    assert all(name in table.stdout for name in RECIPES)
    bad = runner.invoke(app, ["bench", "cost", "--backbone", "7B"])
    assert bad.exit_code == 2 and "available: 1.3B, 14B" in bad.stderr
    odd = runner.invoke(app, ["bench", "cost", "--height", "470"])
    assert odd.exit_code == 2 and "height must be a multiple of 16 pixels, got 470; use 464 or 480" in odd.stderr


def test_real_entry_point():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "fastvmt", "bench", "cost", "--backbone", "1.3B", "--frames", "81", "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["rows"]) == len(RECIPES)
    help_text = subprocess.run([sys.executable, "-m", "fastvmt", "eval", "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0 and "Motion fidelity" in help_text.stdout


def test_bench_cost_strength_semantics_replaces_each_strategys_own():
    runner = CliRunner()

    def rows(*options):
        result = runner.invoke(app, ["bench", "cost", "--backbone", "1.3B", "--frames", "81", "--json", *options])
        assert result.exit_code == 0, result.output
        return {row["strategy"]: row for row in json.loads(result.stdout)["rows"]}

    own, truncated = rows(), rows("--strength-semantics", "truncate")
    for name, recipe in RECIPES.items():
        assert own[name]["strength_semantics"] == recipe.strategy.strength_semantics
        assert truncated[name]["strength_semantics"] == "truncate"
        assert truncated[name]["steps"] == int(50 * recipe.strategy.denoising_strength)
        assert truncated[name]["total"] <= own[name]["total"]
    bad = runner.invoke(app, ["bench", "cost", "--strength-semantics", "img2img"])
    assert bad.exit_code == 2 and "strength_semantics must be one of 'diffsynth', 'truncate'" in bad.stderr


def test_bench_cost_shows_each_lever_and_the_turbo_ratio_to_the_release_under_the_stated_assumption():
    from fastvmt.costmodel import lever_costs

    runner = CliRunner()
    result = runner.invoke(app, ["bench", "cost", "--backbone", "14B", "--frames", "81", "--json",
                                 "--step-cache-skip", "0.3"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["step_cache_skip"] == 0.3
    levers = {row["run"]: row for row in payload["levers"]}
    expected = lever_costs(RELEASED_DITS["14B"], token_grid(81, 480, 832), step_cache_skip=0.3)
    assert set(levers) == set(expected)
    for name, run in expected.items():
        assert levers[name]["total"] == run.total
        assert abs(levers[name]["ratio_to_release"] - run.total / expected["fastvmt-release"].total) < 1e-12
    table = runner.invoke(app, ["bench", "cost", "--backbone", "1.3B", "--frames", "33"])
    assert "release + step cache" in table.stdout and "assumed to skip 50%" in table.stdout
    bad = runner.invoke(app, ["bench", "cost", "--step-cache-skip", "1.5"])
    assert bad.exit_code == 2 and "--step-cache-skip must be" in bad.stderr
