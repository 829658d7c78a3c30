"""``fastvmt bench cost --prompts N``: the FLOPs of N prompts sharing one saved motion against N guided runs."""

from __future__ import annotations

import json
from typing import Any

import typer

from fastvmt.backbones.architecture import RELEASED_DITS
from fastvmt.costmodel.amortised import MOTION_RECIPES, amortised_cost
from fastvmt.costmodel.runs import Sampling
from fastvmt.geometry import frame_count_at_least, token_grid

__all__ = ["amortised_rows", "print_amortised"]


def amortised_rows(backbones: list[str], frames: list[int], height: int, width: int, prompts: list[int],
                   sampling: Sampling, tflops: float) -> list[dict[str, Any]]:
    """One row per backbone, frame count, motion recipe and prompt count."""
    rows = []
    for size in backbones:
        for asked in frames:
            grid = token_grid(frame_count_at_least(asked), height, width)
            for name, recipe in MOTION_RECIPES.items():
                for count in prompts:
                    cost = amortised_cost(recipe, RELEASED_DITS[size], grid, count, sampling)
                    rows.append({
                        "backbone": size, "frames": frame_count_at_least(asked), "height": height, "width": width,
                        "tokens": [grid.frames, grid.height, grid.width], "strategy": name, "prompts": count,
                        "guided_run": cost.guided.total, "plain_run": cost.plain, "shared": cost.shared,
                        "repeated": cost.repeated, "per_prompt": cost.per_prompt, "speedup": cost.speedup,
                        "shared_seconds_floor": cost.shared / (tflops * 1e12),
                        "repeated_seconds_floor": cost.repeated / (tflops * 1e12),
                    })
    return rows


def print_amortised(rows: list[dict[str, Any]], tflops: float, as_json: bool) -> None:
    from fastvmt.cli.listings import echo_table

    if as_json:
        typer.echo(json.dumps({"tflops": tflops, "rows": rows}))
        return
    typer.echo(f"PFLOP for N prompts with one reference motion: 'shared' = one guided run that saves the motion, then "
               f"N - 1 runs sampling with it (plain sampling); 'repeated' = N guided runs. Time floors at {tflops:g} "
               "TFLOP/s.")
    for name, recipe in MOTION_RECIPES.items():
        typer.echo(f"  {name}: {recipe.summary}")
    header = ("backbone", "frames", "strategy", "prompts", "shared", "repeated", "per prompt", "saving",
              "shared s", "repeated s")
    table = [(row["backbone"], str(row["frames"]), row["strategy"], str(row["prompts"]), f"{row['shared'] / 1e15:.1f}",
              f"{row['repeated'] / 1e15:.1f}", f"{row['per_prompt'] / 1e15:.1f}", f"{row['speedup']:.2f}x",
              f"{row['shared_seconds_floor']:.0f}", f"{row['repeated_seconds_floor']:.0f}") for row in rows]
    echo_table(header, table)
